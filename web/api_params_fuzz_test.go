package web

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp/syntax"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/sendhooks/sendhooks/internal/mongotest"
	"github.com/sendhooks/sendhooks/monitor/mongo"
)

// FuzzListParams sends GET /hooks with fuzzed query strings (a raw query,
// plus one key and value that are encoded properly) through the API to an
// embedded MongoDB-wire server, and reads the commands that reach the
// server off the wire. The committed corpus is testdata/fuzz/FuzzListParams.
//
// Properties: the API never panics and never fails as a server fault; a
// refused query is a 400 BAD_PARAMETER whose description names a
// parameter it was given (or says the query does not parse) and sends
// nothing to the database; an accepted one is a 200 whose count and find
// commands filter on the fixed fields only, with user input only as
// values: statuses from the allowed list, dates as BSON dates and the
// search as a regular expression that matches nothing but its literal text.
// No key of the query sent ($ne, $where, $gt, …) can come from the user.
// The API ignores unknown parameters of plain names, as the old API did,
// but never one whose name holds $, [, ], ., { or }: such a query is
// refused, not served.
func FuzzListParams(f *testing.F) {
	for _, seed := range [][3]string{
		{"", "", ""},
		{"page=2&limit=5&status=success,failed&search=order", "", ""},
		{"", "status[$ne]", "failed"},
		{"status%5B%24ne%5D=", "", ""},
		{"", "search", `{"$gt":""}`},
		{"createdStartDate=2024-05-24&createdEndDate=2024-05-24T10:00:00Z", "deliveredStartDate", "2024-05-24"},
		{"page=0&limit=500&_=1716544800000", "createdStartDate", "2024-05-24 00:00:00"},
		{"status.$ne=x&utm_source=a", "Status", "failed"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	env := startWireAPI(f)
	f.Fuzz(func(t *testing.T, rawQuery, key, value string) {
		if key != "" {
			if rawQuery != "" {
				rawQuery += "&"
			}
			rawQuery += url.Values{key: {value}}.Encode()
		}
		env.wire.reset()
		env.log.Reset()
		req := httptest.NewRequest(http.MethodGet, APIPrefix+"/hooks", nil)
		req.URL.RawQuery = rawQuery
		rec := httptest.NewRecorder()
		env.api.ServeHTTP(rec, req)
		commands := env.wire.take()
		t.Logf("?%s: %d, %d commands", rawQuery, rec.Code, len(commands))

		switch rec.Code {
		case http.StatusOK:
			checkListQueries(t, rawQuery, commands)
			checkNoOperatorKey(t, rawQuery)
		case http.StatusBadRequest:
			checkBadParameter(t, rawQuery, rec.Body.Bytes())
			if len(commands) > 0 {
				t.Fatalf("?%s was refused, yet %d commands reached the database: %v", rawQuery, len(commands), commands)
			}
		default:
			t.Fatalf("?%s: answer %d %s, want 200 or 400; log: %s", rawQuery, rec.Code, rec.Body, env.log.String())
		}
	})
}

// wireAPI is the API on a store that reaches FerretDB through a wireTap.
type wireAPI struct {
	api  http.Handler
	wire *wireTap
	log  *syncBuffer
}

func startWireAPI(tb testing.TB) *wireAPI {
	tb.Helper()
	db := mongotest.Start(tb)
	tap := startWireTap(tb, db.Addr())
	store, err := mongo.Open("mongodb://"+tap.addr+"/"+db.Database(), db.Database())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = store.Close(context.Background()) })
	if err := store.Setup(context.Background(), 0); err != nil {
		tb.Fatal(err)
	}
	log := &syncBuffer{}
	api := NewAPI(store, nil, APIConfig{Logger: slog.New(slog.NewTextHandler(log, nil))})
	return &wireAPI{api: api, wire: tap, log: log}
}

// checkNoOperatorKey fails when an accepted rawQuery holds a parameter
// whose name has the shape of an operator or a field path.
func checkNoOperatorKey(t *testing.T, rawQuery string) {
	t.Helper()
	q, _ := url.ParseQuery(rawQuery)
	for k := range q {
		if strings.ContainsAny(k, "$[].{}") {
			t.Fatalf("?%s: the parameter %q was accepted (ignored or read), want it refused", rawQuery, k)
		}
	}
}

// checkBadParameter checks a 400 answer: BAD_PARAMETER, naming one of the
// parameters of rawQuery or saying that the query does not parse.
func checkBadParameter(t *testing.T, rawQuery string, body []byte) {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(body, &e); err != nil || e.Code != "BAD_PARAMETER" || e.Description == "" {
		t.Fatalf("?%s: 400 with %s, want a BAD_PARAMETER error with a description", rawQuery, body)
	}
	if strings.HasPrefix(e.Description, "the query string or form does not parse: ") {
		return
	}
	q, _ := url.ParseQuery(rawQuery)
	for k := range q {
		if strings.Contains(e.Description, strconv.Quote(k)) || strings.HasPrefix(e.Description, k+" ") {
			return
		}
	}
	t.Fatalf("?%s: error %q names none of the parameters given", rawQuery, e.Description)
}

// checkListQueries checks the commands a listed page sent: at least one
// reached the hooks collection, and in every command each key is a field
// or an operator of the store's own queries, and each regular expression
// is literal text (see FuzzListParams).
func checkListQueries(t *testing.T, rawQuery string, commands []bson.Raw) {
	t.Helper()
	hooks := 0
	for _, cmd := range commands {
		if find, _ := cmd.Lookup("find").StringValueOK(); find == "hooks" {
			hooks++
		}
		if count, _ := cmd.Lookup("count").StringValueOK(); count == "hooks" {
			hooks++
		}
		if agg, _ := cmd.Lookup("aggregate").StringValueOK(); agg == "hooks" {
			hooks++
		}
		if err := keysProblem(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: cmd}); err != nil {
			t.Fatalf("?%s: command %v: %v", rawQuery, cmd, err)
		}
	}
	if hooks == 0 {
		t.Fatalf("?%s: no command reached the hooks collection: %v", rawQuery, commands)
	}
}

// storeKeys are the keys the MongoDB store's list queries are made of:
// command fields, the hooks' and rollups' fields, and the operators it
// uses. A key from user input ($ne, $where, $expr, status[$ne], …) is none
// of them.
var storeKeys = map[string]bool{
	// commands and their options
	"find": true, "filter": true, "sort": true, "limit": true, "skip": true, "projection": true,
	"batchSize": true, "singleBatch": true, "hint": true, "lsid": true, "id": true, "$db": true,
	"aggregate": true, "pipeline": true, "cursor": true, "count": true, "query": true,
	"$clusterTime": true, "clusterTime": true, "signature": true, "hash": true, "keyId": true,
	"$readPreference": true, "mode": true, "readConcern": true, "level": true, "maxTimeMS": true,
	// documents
	"_id": true, "created": true, "delivered": true, "status": true, "url": true, "externalId": true,
	"messageId": true, "kind": true, "bucket": true, "n": true, "bin": true, "expireAt": true,
	// operators
	"$in": true, "$gte": true, "$gt": true, "$lte": true, "$lt": true, "$or": true, "$and": true,
	"$match": true, "$group": true, "$sum": true, "$count": true, "$limit": true, "$skip": true,
	"$sort": true, "$project": true,
}

// keysProblem walks a value and reports a key that is not in storeKeys, or
// a regular expression that is not literal text.
func keysProblem(v bson.RawValue) error {
	switch v.Type {
	case bson.TypeArray:
		vals, err := v.Array().Values()
		if err != nil {
			return err
		}
		for _, x := range vals {
			if err := keysProblem(x); err != nil {
				return err
			}
		}
	case bson.TypeEmbeddedDocument:
		elems, err := v.Document().Elements()
		if err != nil {
			return err
		}
		for _, e := range elems {
			if !storeKeys[e.Key()] {
				return fmt.Errorf("unexpected key %q", e.Key())
			}
			if err := keysProblem(e.Value()); err != nil {
				return fmt.Errorf("%s: %w", e.Key(), err)
			}
		}
	case bson.TypeRegex:
		if pattern, options := v.Regex(); options != "i" || !literal(pattern) {
			return fmt.Errorf("/%s/%s is not literal text", pattern, options)
		}
	}
	return nil
}

// TestKeysProblemCatchesInjection shows that FuzzListParams's check of
// the commands would catch an operator or a pattern from user input.
func TestKeysProblemCatchesInjection(t *testing.T) {
	day := time.Date(2024, 5, 24, 0, 0, 0, 0, time.UTC)
	re := func(p string) bson.Regex { return bson.Regex{Pattern: p, Options: "i"} }
	search := func(p string) bson.E {
		return bson.E{Key: "$or", Value: bson.A{bson.D{{Key: "externalId", Value: re(p)}}, bson.D{{Key: "url", Value: re(p)}}}}
	}
	tests := []struct {
		filter bson.D
		ok     bool
	}{
		{bson.D{}, true},
		{bson.D{{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{"failed", "success"}}}},
			{Key: "created", Value: bson.D{{Key: "$gte", Value: day}, {Key: "$lte", Value: day}}},
			search(`a\.b\$`)}, true},
		{bson.D{{Key: "status", Value: bson.D{{Key: "$ne", Value: "failed"}}}}, false},
		{bson.D{{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{bson.D{{Key: "$where", Value: ""}}}}}}}, false},
		{bson.D{{Key: "status[$ne]", Value: "failed"}}, false},
		{bson.D{{Key: "$where", Value: "sleep(1000)"}}, false},
		{bson.D{{Key: "created", Value: bson.D{{Key: "$expr", Value: ""}}}}, false},
		{bson.D{search(".*")}, false},
		{bson.D{search("a|b")}, false},
		{bson.D{{Key: "$or", Value: bson.A{bson.D{{Key: "externalId", Value: re("x")}}, bson.D{{Key: "url", Value: bson.Regex{Pattern: "x"}}}}}}, false},
	}
	for _, tt := range tests {
		raw, err := bson.Marshal(tt.filter)
		if err != nil {
			t.Fatal(err)
		}
		err = keysProblem(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: raw})
		if (err == nil) != tt.ok {
			t.Errorf("%v: problem %v, want ok %v", tt.filter, err, tt.ok)
		}
	}
}

// literal reports whether pattern, a regular expression of valid UTF-8,
// matches only one text: each character escaped, no operator left. A
// pattern of invalid UTF-8 (from a search of invalid UTF-8) is literal when
// every byte but letters and digits is escaped, as regexp.QuoteMeta does.
func literal(pattern string) bool {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		for i := 0; i < len(pattern); i++ {
			c := pattern[i]
			if c == '\\' {
				i++
				continue
			}
			if strings.IndexByte(`.+*?()|[]{}^$`, c) >= 0 {
				return false
			}
		}
		return true
	}
	return re.Op == syntax.OpLiteral || re.Op == syntax.OpEmptyMatch
}

// wireTap is a loopback TCP proxy in front of a MongoDB-wire server. It
// keeps the command document of every OP_MSG a client sends, before
// passing it on, so that a command is kept by the time its answer arrives.
type wireTap struct {
	addr string
	mu   sync.Mutex
	cmds []bson.Raw
}

const opMsg = 2013

func startWireTap(tb testing.TB, server string) *wireTap {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	w := &wireTap{addr: ln.Addr().String()}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		conns  []net.Conn
		closed bool
	)
	// track keeps c to be closed at cleanup, or closes it if that is past.
	track := func(c net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			c.Close()
			return false
		}
		conns = append(conns, c)
		return true
	}
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			if !track(client) {
				continue
			}
			backend, err := net.Dial("tcp", server)
			if err != nil {
				client.Close()
				continue
			}
			if !track(backend) {
				client.Close()
				continue
			}
			wg.Go(func() { _, _ = io.Copy(client, backend); client.Close() })
			wg.Go(func() { w.forward(backend, client); backend.Close() })
		}
	})
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return w
}

// forward copies messages from client to backend, keeping commands.
func (w *wireTap) forward(backend, client net.Conn) {
	header := make([]byte, 16)
	for {
		if _, err := io.ReadFull(client, header); err != nil {
			return
		}
		size := int(binary.LittleEndian.Uint32(header))
		if size < 16 {
			return
		}
		msg := make([]byte, size)
		copy(msg, header)
		if _, err := io.ReadFull(client, msg[16:]); err != nil {
			return
		}
		if binary.LittleEndian.Uint32(header[12:]) == opMsg {
			w.keep(msg[16:])
		}
		if _, err := backend.Write(msg); err != nil {
			return
		}
	}
}

// keep keeps the body section (kind 0) of an OP_MSG.
func (w *wireTap) keep(body []byte) {
	if len(body) < 5 {
		return
	}
	flags := binary.LittleEndian.Uint32(body)
	sections := body[4:]
	if flags&1 != 0 && len(sections) >= 4 { // checksum present
		sections = sections[:len(sections)-4]
	}
	for len(sections) > 5 {
		kind, n := sections[0], int(binary.LittleEndian.Uint32(sections[1:]))
		if n < 5 || 1+n > len(sections) {
			return
		}
		if kind == 0 {
			w.mu.Lock()
			w.cmds = append(w.cmds, bson.Raw(bytes.Clone(sections[1:1+n])))
			w.mu.Unlock()
		}
		sections = sections[1+n:]
	}
}

func (w *wireTap) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cmds = nil
}

// take returns the commands kept since reset, leaving out the driver's
// own (hello, ping, endSessions).
func (w *wireTap) take() []bson.Raw {
	w.mu.Lock()
	defer w.mu.Unlock()
	var cmds []bson.Raw
	for _, c := range w.cmds {
		first, err := c.IndexErr(0)
		if err != nil {
			continue
		}
		switch first.Key() {
		case "hello", "isMaster", "ismaster", "ping", "endSessions", "buildInfo":
			continue
		}
		cmds = append(cmds, c)
	}
	return cmds
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
