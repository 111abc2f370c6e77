package web

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// OpenAPIPath is where the API's OpenAPI document is served.
const OpenAPIPath = APIPrefix + "/openapi.json"

// openAPIDocument is the OpenAPI 3.1 description of every route of NewAPI.
// TestOpenAPIRoutes keeps its paths and NewAPI's routes alike, and
// TestOpenAPIAnswers checks real requests and answers against it.
//
//go:embed openapi.json
var openAPIDocument []byte

// openAPIETag is the document's strong ETag: its SHA-256.
var openAPIETag = func() string {
	sum := sha256.Sum256(openAPIDocument)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}()

// openAPICacheControl lets clients and proxies keep the document for five
// minutes, and then ask again with If-None-Match.
const openAPICacheControl = "public, max-age=300"

// serveOpenAPI answers GET /api/sendhooks/v1/openapi.json with the document
// as committed. It needs no token: it describes the API and holds no data,
// and tools fetch it before they are given one. A request whose
// If-None-Match names the document's ETag is answered 304.
func serveOpenAPI(c echo.Context) error {
	h := c.Response().Header()
	h.Set("Cache-Control", openAPICacheControl)
	h.Set("ETag", openAPIETag)
	if etagListed(c.Request().Header.Get("If-None-Match"), openAPIETag) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPIDocument)
}

// etagListed reports whether an If-None-Match value names etag or is "*",
// comparing weakly (RFC 9110, 13.1.2).
func etagListed(ifNoneMatch, etag string) bool {
	for _, tag := range strings.Split(ifNoneMatch, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" || strings.TrimPrefix(tag, "W/") == etag {
			return true
		}
	}
	return false
}
