package sendhooks

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the event's JSON encoding to b. It writes what
// json.Marshal writes for the event (the same keys, omissions and values)
// without reflection, since the engine encodes one event per delivery.
func (e *StatusEvent) AppendJSON(b []byte) []byte {
	b = appendKey(b, `{"webhookId":`, e.WebhookID)
	b = appendKey(b, `,"status":`, string(e.Status))
	b = appendKey(b, `,"deliveryError":`, e.DeliveryError)
	b = appendKey(b, `,"url":`, e.URL)
	b = appendTime(append(b, `,"created":`...), e.Created)
	b = strconv.AppendInt(append(b, `,"payloadSize":`...), int64(e.PayloadSize), 10)
	b = strconv.AppendInt(append(b, `,"numberOfTries":`...), int64(e.NumberOfTries), 10)
	b = appendTime(append(b, `,"delivered":`...), e.Delivered)
	if e.MessageID != "" {
		b = appendKey(b, `,"messageId":`, e.MessageID)
	}
	b = appendKey(b, `,"streamId":`, e.StreamID)
	b = strconv.AppendInt(append(b, `,"attempt":`...), int64(e.Attempt), 10)
	if e.StatusCode != 0 {
		b = strconv.AppendInt(append(b, `,"statusCode":`...), int64(e.StatusCode), 10)
	}
	b = appendFloat(append(b, `,"durationMs":`...), e.DurationMs)
	b = appendTime(append(b, `,"attemptedAt":`...), e.AttemptedAt)
	b = appendTime(append(b, `,"nextAttemptAt":`...), e.NextAttemptAt)
	if e.Response != "" {
		b = appendKey(b, `,"response":`, e.Response)
	}
	if len(e.MetaData) > 0 {
		b = appendRaw(append(b, `,"metaData":`...), e.MetaData)
	}
	if e.Job != "" {
		b = appendKey(b, `,"job":`, e.Job)
	}
	return append(b, '}')
}

func appendKey(b []byte, key, value string) []byte {
	return appendString(append(b, key...), value)
}

func appendTime(b []byte, t Time) []byte {
	if t.IsZero() {
		return append(b, `""`...)
	}
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendFloat formats as encoding/json does: plain notation, or exponent
// notation for very large and very small magnitudes.
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, '0')
	}
	abs := math.Abs(f)
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		return strconv.AppendFloat(b, f, 'e', -1, 64)
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

// appendRaw appends a raw JSON value, or null when it is not valid JSON, so
// the event stays valid whatever the value holds.
func appendRaw(b []byte, raw json.RawMessage) []byte {
	if !json.Valid(raw) {
		return append(b, "null"...)
	}
	return append(b, raw...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaped as encoding/json
// escapes it: quotes, backslashes, control characters, <, >, & (so the
// text is safe inside HTML), U+2028 and U+2029; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
