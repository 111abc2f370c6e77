package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	vErrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sendhooks/sendhooks"
)

// openAPIValidator checks requests and answers against the committed
// document, with formats (date-time) asserted. When strict, a query
// parameter, header or JSON property the document does not declare is an
// error even where the schema allows more, so that the document stays
// complete; the free-form values (metaData, and the job's own keys) are
// left out of that check.
func openAPIValidator(t *testing.T, strict bool) validator.Validator {
	t.Helper()
	doc, err := libopenapi.NewDocument(openAPIDocument)
	if err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	opts := []config.Option{config.WithFormatAssertions()}
	if strict {
		opts = append(opts, config.WithStrictMode(),
			config.WithStrictIgnorePaths("$.body.metaData", "$.body.metaData.**", "$.body.job.**",
				"$.body.data[*].metaData", "$.body.data[*].metaData.**", "$.body.data[*].job.**"))
	}
	v, errs := validator.NewValidator(doc, opts...)
	if len(errs) > 0 {
		t.Fatalf("openapi.json: no validator: %v", errs)
	}
	return v
}

// validationErrors writes the validator's errors one a line, with the
// failing fields of schema errors.
func validationErrors(errs []*vErrors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "\n  %s %s: %s: %s", e.RequestMethod, e.RequestPath, e.Message, e.Reason)
		if e.HowToFix != "" {
			fmt.Fprintf(&b, " (fix: %s)", e.HowToFix)
		}
		for _, f := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, "\n    %s: %s (%s)", f.FieldPath, f.Reason, f.KeywordLocation)
		}
	}
	return b.String()
}

// TestOpenAPIDocument checks that openapi.json is a valid OpenAPI 3.1
// document, by the OpenAPI 3.1 schema the validator embeds.
func TestOpenAPIDocument(t *testing.T) {
	doc, err := libopenapi.NewDocument(openAPIDocument)
	if err != nil {
		t.Fatal(err)
	}
	if got := doc.GetVersion(); got != "3.1.0" {
		t.Fatalf("openapi.json is OpenAPI %q, want 3.1.0", got)
	}
	if _, err := doc.BuildV3Model(); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("openapi.json: no validator: %v", errs)
	}
	if ok, errs := v.ValidateDocument(); !ok || len(errs) > 0 {
		t.Fatalf("openapi.json is not a valid OpenAPI 3.1 document:%s", validationErrors(errs))
	}
}

// TestOpenAPIRoutes checks that the document describes every route NewAPI
// registers, with its method, and no route the server lacks.
func TestOpenAPIRoutes(t *testing.T) {
	doc, err := libopenapi.NewDocument(openAPIDocument)
	if err != nil {
		t.Fatal(err)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatal(err)
	}
	var described []string
	for path, item := range model.Model.Paths.PathItems.FromOldest() {
		for method := range item.GetOperations().KeysFromOldest() {
			described = append(described, strings.ToUpper(method)+" "+path)
		}
	}

	e := NewAPI(openStore(t), nil, APIConfig{Metrics: prometheus.NewRegistry()})
	var served []string
	for _, r := range e.Routes() {
		if r.Method == echo.RouteNotFound { // the auth group's catch-all, answering 401 or 404
			continue
		}
		segs := strings.Split(r.Path, "/")
		for i, s := range segs {
			if name, ok := strings.CutPrefix(s, ":"); ok {
				segs[i] = "{" + name + "}"
			}
		}
		served = append(served, r.Method+" "+strings.Join(segs, "/"))
	}
	slices.Sort(described)
	slices.Sort(served)
	for _, r := range served {
		if !slices.Contains(described, r) {
			t.Errorf("the server has %s; openapi.json does not describe it", r)
		}
	}
	for _, r := range described {
		if !slices.Contains(served, r) {
			t.Errorf("openapi.json describes %s; the server lacks it", r)
		}
	}
	if len(served) < 9 {
		t.Errorf("the server lists only %d routes: %v", len(served), served)
	}
}

// TestOpenAPIServed checks that the document is served as committed, as
// JSON, cacheable, and without the token the other routes require.
func TestOpenAPIServed(t *testing.T) {
	a := startAPI(t, APIConfig{Token: "s3cret"})
	a.token = "" // send no token
	status, header, _ := a.do(t, http.MethodGet, OpenAPIPath, nil)
	if status != http.StatusOK {
		t.Fatalf("GET %s without a token: %d, want 200", OpenAPIPath, status)
	}
	resp, err := http.Get(a.srv.URL + OpenAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, openAPIDocument) {
		t.Fatalf("the served document (%d bytes) differs from openapi.json (%d bytes)", len(body), len(openAPIDocument))
	}
	if got := header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q, want application/json", got)
	}
	if got := header.Get("Cache-Control"); got != "public, max-age=300" {
		t.Errorf("Cache-Control %q, want public, max-age=300", got)
	}
	etag := header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) || len(etag) != 66 {
		t.Errorf("ETag %q, want a strong ETag of the SHA-256", etag)
	}
	status, _, body304 := a.do(t, http.MethodGet, OpenAPIPath, http.Header{"If-None-Match": {etag}})
	if status != http.StatusNotModified || body304 != "" {
		t.Errorf("GET with If-None-Match: its ETag: %d %q, want 304 and no body", status, body304)
	}
	if status, _, _ := a.do(t, http.MethodGet, APIPrefix+"/hooks", nil); status != http.StatusUnauthorized {
		t.Errorf("GET /hooks without a token: %d, want 401", status)
	}
}

// openAPICheck sends requests to a test API and checks each request and
// its answer against the document: strictly, but for the document itself,
// whose keys its schema does not list (TestOpenAPIServed compares it with
// openapi.json byte for byte).
type openAPICheck struct {
	a           *testAPI
	strict, lax validator.Validator
}

func newOpenAPICheck(t *testing.T, a *testAPI) *openAPICheck {
	return &openAPICheck{a: a, strict: openAPIValidator(t, true), lax: openAPIValidator(t, false)}
}

// exchange sends method path (with the token, if any, and header) and
// checks that the answer has status want and that it validates, and the
// request too unless requestValid is false, in which case the document
// must refuse the request. It returns the answer's body.
func (o *openAPICheck) exchange(t *testing.T, method, path string, header http.Header, body []byte, requestValid bool, want int) []byte {
	t.Helper()
	v := o.strict
	if strings.HasPrefix(path, OpenAPIPath) {
		v = o.lax
	}
	return o.exchangeWith(t, v, method, path, header, body, requestValid, want)
}

// exchangeWith is exchange checked against the validator v.
func (o *openAPICheck) exchangeWith(t *testing.T, v validator.Validator, method, path string, header http.Header, body []byte, requestValid bool, want int) []byte {
	t.Helper()
	newRequest := func() *http.Request {
		var r io.Reader
		if body != nil {
			r = bytes.NewReader(body)
		}
		req, err := http.NewRequest(method, o.a.srv.URL+path, r)
		if err != nil {
			t.Fatal(err)
		}
		if o.a.token != "" {
			req.Header.Set("Authorization", "Bearer "+o.a.token)
		}
		if method == http.MethodPost && body == nil && header == nil {
			req.Header.Set(RequestHeader, "1") // as a program sends it
		}
		for k, vs := range header {
			req.Header[k] = vs
		}
		return req
	}
	ok, errs := v.ValidateHttpRequestSync(newRequest())
	switch {
	case requestValid && (!ok || len(errs) > 0):
		t.Errorf("%s %s: the request does not validate:%s", method, path, validationErrors(errs))
	case !requestValid && ok:
		t.Errorf("%s %s: the document admits the request, which the server refuses", method, path)
	}

	req := newRequest()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, got, want)
	}
	resp.Body = io.NopCloser(bytes.NewReader(got))
	if ok, errs := v.ValidateHttpResponse(newRequest(), resp); !ok || len(errs) > 0 {
		t.Errorf("%s %s: the %d answer does not validate:%s\n  body: %.2000s", method, path, resp.StatusCode, validationErrors(errs), got)
	}
	return got
}

// get GETs a valid request and decodes the answer into v, when not nil.
func (o *openAPICheck) get(t *testing.T, path string, want int, v any) {
	t.Helper()
	body := o.exchange(t, http.MethodGet, path, nil, nil, true, want)
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, body)
		}
	}
}

// TestOpenAPIAnswers sends real requests to the API on a real Redis and
// SQLite store and checks every request and answer against the document.
func TestOpenAPIAnswers(t *testing.T) {
	a := startAPI(t, APIConfig{})
	o := newOpenAPICheck(t, a)
	seedList(t, a)
	const sid, sid2 = "1767348000000-0", "1767348000001-0"
	withMeta := engineEvent(sid, 1, sendhooks.StatusRetrying, 12.5)
	withMeta.MetaData = json.RawMessage(`{"tenant":"t1","tags":["a",{"deep":null}]}`)
	withMeta.MessageID = "msg-7"
	a.seed(t,
		withMeta,
		engineEvent(sid, 2, sendhooks.StatusFailed, 30),
		engineEvent(sid2, 1, sendhooks.StatusSuccess, 8),
		engineEvent("1767348000002-0", 1, sendhooks.StatusRetrying, 8),
	)
	hooks := APIPrefix + "/hooks"

	t.Run("list", func(t *testing.T) {
		for _, q := range []string{
			"", "?page=2&limit=5", "?page=9&limit=100", "?limit=1",
			"?status=failed", "?status=failed,retrying", "?status=success,failed,retrying&limit=3",
			"?createdStartDate=2026-01-01&createdEndDate=2026-01-02T23:00:00Z",
			"?createdStartDate=2026-01-02T00:00:00%2B02:00&status=success",
			"?deliveredStartDate=2026-01-01&deliveredEndDate=2026-01-03",
			"?search=order", "?search=ORDER-5", "?search=" + sid, "?search=msg-7", "?search=nothing.matches",
		} {
			o.get(t, hooks+q, http.StatusOK, nil)
		}
		// The server reads an empty value as the default; the document
		// has no words for that.
		o.exchange(t, http.MethodGet, hooks+"?page=&limit=&status=&search=", nil, nil, false, http.StatusOK)
	})

	t.Run("cursors", func(t *testing.T) {
		var first, second, back listBody
		o.get(t, hooks+"?limit=5", http.StatusOK, &first)
		if first.Meta.Older == "" {
			t.Fatalf("the first page has no older cursor: %+v", first.Meta)
		}
		o.get(t, hooks+"?limit=5&older="+url.QueryEscape(first.Meta.Older), http.StatusOK, &second)
		if second.Meta.Newer == "" || second.Meta.Older == "" {
			t.Fatalf("the second page lacks a cursor: %+v", second.Meta)
		}
		o.get(t, hooks+"?limit=5&newer="+url.QueryEscape(second.Meta.Newer), http.StatusOK, &back)
		if !slices.Equal(back.ids(), first.ids()) {
			t.Fatalf("newer of the second page: %v, want the first page %v", back.ids(), first.ids())
		}
		o.get(t, hooks+"?limit=5&status=success&older="+url.QueryEscape(second.Meta.Older), http.StatusOK, nil)
	})

	t.Run("one", func(t *testing.T) {
		o.get(t, hooks+"/"+sid, http.StatusOK, nil)     // attempts, metaData, job
		o.get(t, hooks+"/order.1", http.StatusOK, nil)  // an old engine's webhook
		o.get(t, hooks+"/wh-"+sid2, http.StatusOK, nil) // by externalId
		o.get(t, hooks+"/"+url.PathEscape("order(2)"), http.StatusOK, nil)
		o.get(t, hooks+"/nope", http.StatusNotFound, nil)
	})

	t.Run("forms of the older clients", func(t *testing.T) {
		// Described by the document's schemas: the date forms, a limit
		// above 100 (served as 100, with meta.limitCapped) and trailing
		// slashes.
		for _, q := range []string{
			"?limit=500", "?page=2&limit=101", "/?page=1", "/",
			"?createdStartDate=2026-01-02+00:00:00&createdEndDate=2026-01-02+23:59:59",
			"?createdStartDate=2026-01-02T00:00:00&deliveredEndDate=2026-01-03",
			"?createdStartDate=Fri,%2002%20Jan%202026%2000:00:00%20GMT", "?deliveredStartDate=1767348000000",
			"?createdEndDate=Fri+Jan+02+2026+12:00:00+GMT%2B0200+(Central+European+Standard+Time)",
		} {
			o.get(t, hooks+q, http.StatusOK, nil)
		}
		var capped listBody
		o.get(t, hooks+"/?limit=500&status=success", http.StatusOK, &capped)
		if m := capped.Meta; !m.LimitCapped || m.ItemsPerPage != 100 || m.TotalPages != 1 || len(capped.Data) != 11 {
			t.Errorf("limit=500: %d webhooks, meta %+v; want 11, 100 per page, capped", len(capped.Data), m)
		}
		o.get(t, hooks+"/"+sid+"/", http.StatusOK, nil)
		o.get(t, APIPrefix+"/stats/?from=2026-01-01+00:00:00&to=1767398400000", http.StatusOK, nil)
		o.exchange(t, http.MethodPost, hooks+"/retry/?search=zzz", nil, nil, true, http.StatusAccepted)
		o.get(t, "/healthz/", http.StatusOK, nil)

		// Read as the older API read them, which the schemas do not say:
		// page and limit that give no whole number of at least 1.
		for _, q := range []string{"?page=0", "?page=abc&limit=abc", "?limit=0", "?page=-1&limit=-5", "?page=1.5&limit=5px"} {
			o.exchange(t, http.MethodGet, hooks+q, nil, nil, false, http.StatusOK)
		}
		// Ignored parameters: the document says so in words; its strict
		// check knows declared names only, so these go to the lax one.
		for _, path := range []string{hooks + "?_=1716544800000", hooks + "/?status=failed&utm_source=mail&_=1", APIPrefix + "/stats?to=2026-01-02&page=2"} {
			o.exchangeWith(t, o.lax, http.MethodGet, path, nil, nil, true, http.StatusOK)
			o.exchangeWith(t, o.strict, http.MethodGet, path, nil, nil, false, http.StatusOK)
		}
	})

	t.Run("bad parameters", func(t *testing.T) {
		for _, path := range []string{
			hooks + "?status=lost", hooks + "?page=1000001",
			hooks + "?older=xyz", hooks + "?search=" + strings.Repeat("s", 201),
			hooks + "?status%5B%24ne%5D=success", hooks + "/?status.%24ne=success",
			APIPrefix + "/stats?to=2026-01-02&bucket=5m&Bucket=1m",
		} {
			o.exchange(t, http.MethodGet, path, nil, nil, false, http.StatusBadRequest)
		}
		// Refused by the server only: the document cannot say these.
		for _, path := range []string{
			hooks + "?older=1.YQ&newer=1.YQ", hooks + "?createdStartDate=2026-01-02&createdEndDate=2026-01-01",
			hooks + "?createdStartDate=yesterday", hooks + "?page=1000000&limit=100",
			APIPrefix + "/stats?from=2026-01-01&to=2026-03-01&bucket=1m", hooks + "?search=%zz",
			hooks + "?limit=5&limit=6", APIPrefix + "/stats?bucket=10s", hooks + "?createdStartDate=24/05/2024",
			hooks + "?page=100002",
		} {
			o.exchange(t, http.MethodGet, path, nil, nil, true, http.StatusBadRequest)
		}
		o.exchange(t, http.MethodGet, APIPrefix+"/stats", http.Header{"Content-Type": {"application/json"}},
			bytes.Repeat([]byte(" "), maxBodyBytes+1), true, http.StatusRequestEntityTooLarge)
	})

	t.Run("retry", func(t *testing.T) {
		// A form of another site: no JSON, no Sendhooks-Request header.
		o.exchange(t, http.MethodPost, hooks+"/"+sid+"/retry", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, []byte("a=1"), true, http.StatusForbidden)
		var q struct{ Attempt int }
		if err := json.Unmarshal(o.exchange(t, http.MethodPost, hooks+"/"+sid+"/retry", nil, nil, true, http.StatusAccepted), &q); err != nil || q.Attempt != 3 {
			t.Fatalf("retry: attempt %d, %v; want 3", q.Attempt, err)
		}
		o.get(t, hooks+"/"+sid, http.StatusOK, nil)                                                         // with retryQueued, retryQueuedAt
		o.exchange(t, http.MethodPost, hooks+"/"+sid+"/retry", nil, nil, true, http.StatusConflict)         // ALREADY_QUEUED
		o.exchange(t, http.MethodPost, hooks+"/order(2)/retry", nil, nil, true, http.StatusConflict)        // NOT_RETRIABLE
		o.exchange(t, http.MethodPost, hooks+"/1767348000002-0/retry", nil, nil, true, http.StatusConflict) // retrying
		o.exchange(t, http.MethodPost, hooks+"/nope/retry", nil, nil, true, http.StatusNotFound)
		o.exchange(t, http.MethodPost, hooks+"/retry?status=failed&createdStartDate=2026-01-01", nil, nil, true, http.StatusAccepted)
		o.exchange(t, http.MethodPost, hooks+"/retry?search=zzz", nil, nil, true, http.StatusAccepted)
		o.exchange(t, http.MethodPost, hooks+"/retry?status=success", nil, nil, false, http.StatusBadRequest)
	})

	t.Run("stats", func(t *testing.T) {
		for _, q := range []string{"", "?from=2026-01-01&to=2026-01-03&bucket=6h", "?from=2026-01-02T09:00:00Z&to=2026-01-02T11:00:00Z&bucket=15m", "?to=2026-01-02"} {
			o.get(t, APIPrefix+"/stats"+q, http.StatusOK, nil)
		}
	})

	t.Run("operations", func(t *testing.T) {
		o.get(t, "/healthz", http.StatusOK, nil)
		o.get(t, "/readyz", http.StatusOK, nil)
		o.get(t, "/metrics", http.StatusOK, nil)
		o.get(t, OpenAPIPath, http.StatusOK, nil)
	})
}

// TestOpenAPIAnswersWithToken checks the answers of an API that requires
// a token against the document.
func TestOpenAPIAnswersWithToken(t *testing.T) {
	a := startAPI(t, APIConfig{Token: "s3cret"})
	o := newOpenAPICheck(t, a)
	o.get(t, APIPrefix+"/hooks?limit=2", http.StatusOK, nil)
	a.token = ""
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, APIPrefix + "/hooks"}, {http.MethodGet, APIPrefix + "/hooks/x"},
		{http.MethodPost, APIPrefix + "/hooks/x/retry"}, {http.MethodPost, APIPrefix + "/hooks/retry"},
		{http.MethodGet, APIPrefix + "/stats"}, {http.MethodGet, "/metrics"},
	} {
		o.exchange(t, r.method, r.path, nil, nil, true, http.StatusUnauthorized)
	}
	o.exchange(t, http.MethodGet, APIPrefix+"/hooks", http.Header{"Authorization": {"Bearer wrong"}}, nil, true, http.StatusUnauthorized)
	o.get(t, OpenAPIPath, http.StatusOK, nil)
	o.get(t, "/healthz", http.StatusOK, nil)
	o.get(t, "/readyz", http.StatusOK, nil)
}
