package engine

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names of the Standard Webhooks scheme
// (https://www.standardwebhooks.com). Receivers read these to drop
// duplicates (webhook-id), reject replays (webhook-timestamp) and verify
// the sender (webhook-signature).
const (
	// HeaderWebhookID carries the job's webhookId; it is the same on every
	// attempt so a receiver can recognise a redelivery.
	HeaderWebhookID = "webhook-id"
	// HeaderWebhookTimestamp carries the attempt's time in Unix seconds.
	HeaderWebhookTimestamp = "webhook-timestamp"
	// HeaderWebhookSignature carries one or more space-separated
	// "v1,<base64 HMAC-SHA256>" signatures.
	HeaderWebhookSignature = "webhook-signature"
)

// secretPrefix marks a secret encoded the Standard Webhooks way: base64
// after the prefix.
const secretPrefix = "whsec_"

// signatureVersion prefixes every signature this engine produces.
const signatureVersion = "v1,"

// errBadSecret is returned, wrapped, for a whsec_ secret that does not
// decode. It never includes the secret itself: errors end up in logs and
// status events, and the secret must not.
var errBadSecret = errors.New("secretHash's whsec_ value is not valid base64")

// SigningKey turns a job's secretHash into the HMAC key. A value starting
// with "whsec_" is standard base64 after the prefix, as the Standard
// Webhooks spec says; any other value is used as raw key bytes, which keeps
// secrets written for the older engine working. An empty secretHash gives
// a nil key and no error: such jobs are sent unsigned.
func SigningKey(secretHash string) ([]byte, error) {
	if secretHash == "" {
		return nil, nil
	}
	encoded, ok := strings.CutPrefix(secretHash, secretPrefix)
	if !ok {
		return []byte(secretHash), nil
	}
	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		// The decoder's error names the offending byte offset only, never
		// the input, so it is safe to keep for context.
		return nil, fmt.Errorf("signing key: %w (%v)", errBadSecret, err)
	}
	return key, nil
}

// Sign returns the webhook-signature header value for one request:
// "v1," followed by the standard base64 of
// HMAC-SHA256(key, webhookID + "." + unixSeconds + "." + body).
//
// It runs once per delivery attempt, so it feeds the parts to the MAC one
// by one instead of concatenating the body into a new string, and reuses
// one small buffer for both the signed prefix and the digest.
func Sign(key []byte, webhookID string, timestamp time.Time, body []byte) string {
	mac := hmac.New(sha256.New, key)

	// The prefix buffer escapes (mac.Write is an interface call), so size
	// it once to also hold the digest that mac.Sum appends later.
	buf := make([]byte, 0, max(len(webhookID)+2+20, sha256.Size))
	buf = append(buf, webhookID...)
	buf = append(buf, '.')
	buf = strconv.AppendInt(buf, timestamp.Unix(), 10)
	buf = append(buf, '.')
	mac.Write(buf)
	mac.Write(body)
	sum := mac.Sum(buf[:0])

	var encoded [44]byte // base64 of a 32-byte digest is always 44 bytes
	base64.StdEncoding.Encode(encoded[:], sum)

	var sig strings.Builder
	sig.Grow(len(signatureVersion) + len(encoded))
	sig.WriteString(signatureVersion)
	sig.Write(encoded[:])
	return sig.String()
}
