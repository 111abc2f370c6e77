package engine

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
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
func Sign(key []byte, webhookID string, timestamp time.Time, body []byte) string {
	var s signer
	return s.sign(key, webhookID, timestamp, body)
}

// signer signs requests one after another, as a worker does. It keeps the
// HMAC state of the last key: jobs for one receiver mostly share a secret,
// and setting up the MAC for a key costs two hash blocks and a few
// allocations. It feeds the signed parts to the MAC one by one instead of
// concatenating the body into a new string. Not safe for concurrent use.
type signer struct {
	key []byte
	mac hash.Hash
	buf []byte // the signed prefix, then the digest
}

func (s *signer) sign(key []byte, webhookID string, timestamp time.Time, body []byte) string {
	if s.mac == nil || !bytes.Equal(s.key, key) {
		s.key = append(s.key[:0], key...)
		s.mac = hmac.New(sha256.New, s.key)
	} else {
		s.mac.Reset()
	}
	s.buf = append(s.buf[:0], webhookID...)
	s.buf = append(s.buf, '.')
	s.buf = strconv.AppendInt(s.buf, timestamp.Unix(), 10)
	s.buf = append(s.buf, '.')
	s.mac.Write(s.buf)
	s.mac.Write(body)
	s.buf = s.mac.Sum(s.buf[:0])

	var sig [len(signatureVersion) + 44]byte // base64 of a 32-byte digest is 44 bytes
	copy(sig[:], signatureVersion)
	base64.StdEncoding.Encode(sig[len(signatureVersion):], s.buf)
	return string(sig[:])
}
