// Package client is a small producer for Sendhooks: it writes webhook jobs
// into the jobs stream that the engine reads, exactly as any other producer
// would with XADD hooks * data '<json>'.
//
// A producer needs nothing more than a Redis client and this package:
//
//	c := client.New(rdb)
//	id, err := c.Send(ctx, sendhooks.Job{URL: "https://receiver.example/hook", Data: json.RawMessage(`{"order":42}`)})
//
// Send checks the job before writing it, so a job the engine would refuse
// as a bad job is refused here instead, with the same *sendhooks.BadJobError.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
)

// Client writes jobs into one jobs stream. It is safe for concurrent use,
// as the redis client it wraps is.
type Client struct {
	rdb    redis.Cmdable
	stream string
}

// Option changes a Client made by New.
type Option func(*Client)

// WithStream sets the jobs stream to write to, the engine's
// redisStreamName (default sendhooks.DefaultJobStream, "hooks").
func WithStream(name string) Option {
	return func(c *Client) { c.stream = name }
}

// New returns a Client that writes through rdb (a *redis.Client, a
// cluster client or any other redis.Cmdable) into the jobs stream.
func New(rdb redis.Cmdable, opts ...Option) *Client {
	c := &Client{rdb: rdb, stream: sendhooks.DefaultJobStream}
	for _, opt := range opts {
		opt(c)
	}
	return c
}

// Stream returns the name of the jobs stream the client writes to.
func (c *Client) Stream() string { return c.stream }

// Send checks job with Encode and adds it to the jobs stream as one entry
// whose field "data" is the job's JSON. It returns the entry's stream id,
// which the engine reports as streamId in the job's status events.
//
// A job the engine could never deliver is refused without writing
// anything; the error is then a *sendhooks.BadJobError (see
// sendhooks.IsBadJob).
func (c *Client) Send(ctx context.Context, job sendhooks.Job) (string, error) {
	doc, err := Encode(job)
	if err != nil {
		return "", err
	}
	id, err := c.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: c.stream,
		Values: []any{sendhooks.StreamField, doc},
	}).Result()
	if err != nil {
		return "", fmt.Errorf("send job to stream %q: %w", c.stream, err)
	}
	return id, nil
}

// Encode checks job and returns the JSON document a producer writes into
// the "data" field of a jobs-stream entry. The job must pass
// sendhooks.Job.Validate, and its Data and MetaData, when set, must be
// valid JSON; otherwise the error is a *sendhooks.BadJobError.
//
// Data and MetaData are written byte for byte as given (only surrounding
// white space is dropped), since the engine POSTs Data as it finds it and
// signs exactly those bytes. Empty string fields are left out, as the
// older producers did.
func Encode(job sendhooks.Job) ([]byte, error) {
	if err := job.Validate(); err != nil {
		return nil, err
	}
	data, err := rawJSON("data", job.Data)
	if err != nil {
		return nil, err
	}
	meta, err := rawJSON("metaData", job.MetaData)
	if err != nil {
		return nil, err
	}
	w := objectWriter{}
	w.enc = json.NewEncoder(&w.buf)
	w.enc.SetEscapeHTML(false) // keep URLs with & readable in redis-cli
	w.buf.WriteByte('{')
	w.text("url", job.URL)
	w.text("webhookId", job.WebhookID)
	w.text("messageId", job.MessageID)
	w.raw("data", data)
	w.text("secretHash", job.SecretHash)
	w.raw("metaData", meta)
	w.buf.WriteByte('}')
	return w.buf.Bytes(), nil
}

// rawJSON returns value without surrounding white space, or a
// *sendhooks.BadJobError naming key when it is not valid JSON.
func rawJSON(key string, value json.RawMessage) (json.RawMessage, error) {
	raw := bytes.TrimSpace(value)
	if len(raw) > 0 && !json.Valid(raw) {
		return nil, &sendhooks.BadJobError{Reason: fmt.Sprintf("the job's %q is not valid JSON: %.60q", key, raw)}
	}
	return raw, nil
}

// objectWriter writes the members of a JSON object, leaving out empty
// values.
type objectWriter struct {
	buf bytes.Buffer
	enc *json.Encoder
}

// text writes a string member unless value is empty.
func (w *objectWriter) text(key, value string) {
	if value != "" {
		w.key(key)
		w.str(value)
	}
}

// raw writes a member whose value is already valid JSON, unless it is empty.
func (w *objectWriter) raw(key string, value json.RawMessage) {
	if len(value) > 0 {
		w.key(key)
		w.buf.Write(value)
	}
}

func (w *objectWriter) key(key string) {
	if w.buf.Len() > 1 {
		w.buf.WriteByte(',')
	}
	w.str(key)
	w.buf.WriteByte(':')
}

// str writes a JSON string. Encoding a Go string cannot fail (invalid
// UTF-8 becomes U+FFFD), and Encode ends every value with a newline.
func (w *objectWriter) str(s string) {
	_ = w.enc.Encode(s)
	w.buf.Truncate(w.buf.Len() - 1)
}
