// Package static holds the dashboard's stylesheet and browser libraries,
// embedded in the binary so the dashboard needs no other host.
//
// vendor/ holds copies of pinned npm packages (see package.json): after
// changing a version there, run `npm ci && npm run vendor` and commit the
// copied files.
package static

import "embed"

// FS holds app.css, app.js and vendor/htmx.min.js.
//
//go:embed app.css app.js vendor/htmx.min.js
var FS embed.FS
