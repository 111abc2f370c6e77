// Package detail is the page of one webhook: its ids, times, payload and
// meta data, and the live timeline of its attempts with a Retry button.
package detail

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strconv"
	"time"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/monitor"
)

// Data is what the detail page shows.
type Data struct {
	Hook monitor.Hook
	// Notice reports what an action did; Problem why it failed.
	Notice, Problem string
}

// Payload is the body the job POSTs, as indented JSON; "" when the engine
// did not report the job. The job's secretHash is never shown.
func (d Data) Payload() string {
	if d.Hook.Job == "" {
		return ""
	}
	var job struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(d.Hook.Job), &job); err != nil || job.Data == nil {
		return "" // a bad job: its text may hold the secret, so it is not shown
	}
	return pretty(job.Data)
}

// MetaData is the job's meta data as indented JSON; "" when there is none.
func (d Data) MetaData() string {
	if d.Hook.MetaData == "" {
		return ""
	}
	return pretty([]byte(d.Hook.MetaData))
}

// pretty indents JSON; text that is not JSON is returned as it is.
func pretty(raw []byte) string {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return string(raw)
	}
	return b.String()
}

// RetryURL is where the Retry button posts.
func (d Data) RetryURL() string {
	return "/hooks/" + url.PathEscape(d.Hook.ID) + "/retry"
}

// LiveURL is where the live part of the page is polled.
func (d Data) LiveURL() string {
	return "/partials/hooks/" + url.PathEscape(d.Hook.ID)
}

// Retrying says whether the engine still has attempts scheduled, so that
// a Retry from here would be refused.
func (d Data) Retrying() bool {
	return d.Hook.Status == sendhooks.StatusRetrying
}

// RetryQueued says whether a retry queued by hand waits for the engine,
// so that another Retry would be refused.
func (d Data) RetryQueued() bool {
	return !d.Retrying() && !d.Hook.CanMarkRetry(time.Now())
}

// statusCode is an attempt's HTTP status, or "no answer".
func statusCode(a monitor.Attempt) string {
	if a.StatusCode == 0 {
		return "no answer"
	}
	return "HTTP " + strconv.Itoa(a.StatusCode)
}

// attemptClass marks an attempt on the timeline by its status.
func attemptClass(a monitor.Attempt) string {
	return "attempt-" + string(a.Status)
}
