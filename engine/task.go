package engine

import (
	"cmp"
	"fmt"
	"net"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
)

// task is one jobs-stream entry on its way through a worker: the job and
// where it stands in its life (which attempt, under which identity).
type task struct {
	entryID  string // this entry's id in the jobs stream, acknowledged when done
	origin   string // the entry id under which the job first arrived
	attempt  int    // the attempt to make now, 1-based
	runStart int    // the attempt at which the current retry schedule began
	raw      string // the job document as written
	job      sendhooks.Job
	to       target // where the job's requests go, read from its URL
	key      []byte // the signing key from the job's secretHash; nil: unsigned
	bad      error  // why the job can never be delivered, if it can't
	panicked []byte // the stack of a panic while the entry was read, which made it bad
}

// readFault, when set (by tests only, before any engine starts), is
// called as each stream entry is read: a test makes it panic for one.
var readFault func(msg redis.XMessage)

// newTask reads a stream entry. It never fails: an entry that cannot be
// delivered becomes a task whose bad field says why, so that it ends with a
// failed status event instead of blocking the stream. So does an entry
// whose reading panics (a bug that its contents reach), keeping the stack
// (refuse then ends it in the dead-letter stream): left alone, the panic
// would end the engine, which reads its own pending entries first after a
// restart, and would end again on the same entry.
func newTask(msg redis.XMessage) (t task) {
	defer func() {
		if v := recover(); v != nil {
			// What identifies the job, read again by plain lookups, so that
			// its end updates its webhook and keeps its document.
			stack := debug.Stack()
			t = task{entryID: msg.ID, origin: msg.ID, attempt: 1, runStart: 1, panicked: stack}
			if o, ok := msg.Values[sendhooks.FieldOrigin].(string); ok && isStreamID(o) {
				t.origin = o
			}
			t.attempt = attemptField(msg.Values, sendhooks.FieldAttempt, 1)
			t.raw, _ = msg.Values[sendhooks.StreamField].(string)
			t.bad = &sendhooks.BadJobError{Reason: fmt.Sprintf("internal error while reading the job: %v", v)}
		}
	}()
	if readFault != nil {
		readFault(msg)
	}
	t = task{entryID: msg.ID, origin: msg.ID, attempt: 1, runStart: 1}
	if v, ok := msg.Values[sendhooks.FieldOrigin].(string); ok && isStreamID(v) {
		// Anything else in the field (it can be written by anyone who can
		// write the stream) is ignored: the origin goes into a header and
		// into the retry set's members, which it must not break.
		t.origin = v
	}
	// The counts are written by anyone who can write the stream too: a
	// schedule cannot start after the attempt it is at.
	t.attempt = attemptField(msg.Values, sendhooks.FieldAttempt, 1)
	t.runStart = min(attemptField(msg.Values, sendhooks.FieldRunStart, t.attempt), t.attempt)

	raw, ok := msg.Values[sendhooks.StreamField].(string)
	if !ok {
		t.bad = &sendhooks.BadJobError{Reason: fmt.Sprintf("the stream entry has no %q field (fields: %s)",
			sendhooks.StreamField, fieldNames(msg.Values))}
		return t
	}
	t.raw = raw
	if t.job, t.bad = sendhooks.ParseJob([]byte(raw)); t.bad != nil {
		return t
	}
	if t.bad = cmp.Or(headerSafe("webhookId", t.job.WebhookID), headerSafe("secretHash", t.job.SecretHash)); t.bad != nil {
		return t
	}
	var err error
	if t.to, err = parseTarget(t.job.URL); err != nil {
		t.bad = err
		return t
	}
	if key, err := SigningKey(t.job.SecretHash); err != nil {
		t.bad = &sendhooks.BadJobError{Reason: err.Error()}
	} else {
		t.key = key
	}
	return t
}

// isStreamID tells whether s has the form of a stream entry id,
// <milliseconds>-<sequence>.
func isStreamID(s string) bool {
	ms, seq, ok := strings.Cut(s, "-")
	return ok && isDigits(ms) && isDigits(seq)
}

func isDigits(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// maxAttempt bounds the attempt numbers read from a stream entry: far
// more than any schedule (at most 101 attempts) and hand-made retries
// reach, and far from overflowing when counted on.
const maxAttempt = 1_000_000

// attemptField reads an attempt number, from 1 to maxAttempt, written by
// the engine or the monitor; a missing or garbled value falls back to
// def, since the job itself is still good.
func attemptField(values map[string]any, name string, def int) int {
	s, ok := values[name].(string)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxAttempt {
		return def
	}
	return n
}

func fieldNames(values map[string]any) string {
	names := make([]string, 0, len(values))
	for k := range values {
		names = append(names, strconv.Quote(k))
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// created is when the job first entered the stream, read from the
// millisecond timestamp that starts every stream id.
func (t task) created() time.Time {
	ms, _, _ := strings.Cut(t.origin, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

// webhookID is the webhook-id header: the producer's webhookId, or the
// job's stream identity when the producer gave none. It is the same for
// every attempt of a job, so receivers can drop duplicates.
func (t task) webhookID() string {
	if t.job.WebhookID != "" {
		return t.job.WebhookID
	}
	return "msg_" + t.origin
}

// attemptsLeft reports whether the retry schedule allows another attempt
// after the current one.
func (t task) attemptsLeft(schedule []time.Duration) bool {
	return t.attempt-t.runStart < len(schedule)
}

// nextWait is the schedule's wait before the attempt after the current one.
func (t task) nextWait(schedule []time.Duration) time.Duration {
	return schedule[t.attempt-t.runStart]
}

// quickGroup reads the host group of a stream entry's job from its URL
// alone, without parsing the rest of the job: a job read while its group
// has no room in memory is parked by id and read again later, so a full
// parse now would be thrown away, and behind a slow receiver's backlog
// that is most of the jobs read. It gives up (false) on all but the plain
// case, and the caller parses the job in full: one member named "url" in
// any case anywhere in the document (the parser matches names regardless
// of case, and a second one may be the one it keeps, or a nested one),
// no \u escape that could spell one, its value a string without escapes,
// an http or https URL whose host is plain ASCII (no user info, IPv6
// literal or percent sign). A job that is bad in another way is refused
// when its turn comes.
func quickGroup(msg redis.XMessage) (string, bool) {
	raw, ok := msg.Values[sendhooks.StreamField].(string)
	if !ok || mayEscapeURLKey(raw) {
		return "", false
	}
	at := -1
	for i := 0; i+4 < len(raw); i++ {
		if raw[i] == '"' && raw[i+4] == '"' && strings.EqualFold(raw[i+1:i+4], "url") {
			if at >= 0 || i > 0 && raw[i-1] == '\\' {
				return "", false // a second one, or an escaped quote
			}
			at = i
		}
	}
	if at < 0 {
		return "", false
	}
	rest, ok := strings.CutPrefix(strings.TrimLeft(raw[at+len(`"url"`):], " \t\r\n"), ":")
	if !ok {
		return "", false // a string value "url", not the key
	}
	rest, ok = strings.CutPrefix(strings.TrimLeft(rest, " \t\r\n"), `"`)
	end := strings.IndexByte(rest, '"')
	if !ok || end < 0 {
		return "", false
	}
	u := rest[:end]
	scheme, after, ok := strings.Cut(u, "://")
	if !ok || !strings.EqualFold(scheme, "http") && !strings.EqualFold(scheme, "https") {
		return "", false
	}
	host := after
	if i := strings.IndexAny(after, "/?#"); i >= 0 {
		host = after[:i]
	}
	if host == "" || strings.ContainsAny(host, `\@[]%`) || !isASCII(host) {
		return "", false
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "" {
		return "", false
	}
	return hostGroupOf(host), true
}

// mayEscapeURLKey tells whether raw holds a \u escape of one of the
// letters of "url" in either case, with which a member name could spell
// it unseen.
func mayEscapeURLKey(raw string) bool {
	for rest := raw; ; {
		i := strings.Index(rest, `\u00`)
		if i < 0 || i+6 > len(rest) {
			return false
		}
		switch strings.ToLower(rest[i+4 : i+6]) {
		case "75", "72", "6c", "55", "52", "4c": // u r l U R L
			return true
		}
		rest = rest[i+4:]
	}
}
