package engine

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// receiverTolerance is how far a receiver following the Standard Webhooks
// spec lets webhook-timestamp drift from its own clock.
const receiverTolerance = 5 * time.Minute

// verifyAsReceiver checks a signed request the way a receiver would, with
// no help from the code under test: it decodes the secret itself, rebuilds
// the signed content from the headers, and accepts the request if any of the
// space-separated v1 signatures matches and the timestamp is recent.
func verifyAsReceiver(secret string, header http.Header, body []byte, now time.Time) error {
	key := []byte(secret)
	if encoded, ok := strings.CutPrefix(secret, "whsec_"); ok {
		var err error
		if key, err = base64.StdEncoding.DecodeString(encoded); err != nil {
			return fmt.Errorf("decode secret: %w", err)
		}
	}
	id := header.Get(HeaderWebhookID)
	tsText := header.Get(HeaderWebhookTimestamp)
	if id == "" || tsText == "" {
		return errors.New("missing webhook-id or webhook-timestamp")
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("parse timestamp: %w", err)
	}
	if drift := now.Sub(time.Unix(ts, 0)); drift > receiverTolerance || drift < -receiverTolerance {
		return fmt.Errorf("timestamp outside tolerance by %v", drift)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + tsText + "." + string(body)))
	want := mac.Sum(nil)
	for entry := range strings.FieldsSeq(header.Get(HeaderWebhookSignature)) {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue // unknown schemes are skipped, as the spec asks
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no matching signature")
}

// signedHeader builds the headers the engine sends for one attempt.
func signedHeader(t *testing.T, secret, id string, ts time.Time, body []byte) http.Header {
	t.Helper()
	key, err := SigningKey(secret)
	if err != nil {
		t.Fatalf("SigningKey: %v", err)
	}
	h := http.Header{}
	h.Set(HeaderWebhookID, id)
	h.Set(HeaderWebhookTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderWebhookSignature, Sign(key, id, ts, body))
	return h
}

// TestSignKnownAnswer checks Sign against the test vector published with
// the Standard Webhooks spec, so we match every other implementation.
func TestSignKnownAnswer(t *testing.T) {
	key, err := SigningKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatalf("SigningKey: %v", err)
	}
	got := Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	const want = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	if got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
}

// TestSignVerifiedByReceiver round-trips signatures through the
// independent receiver, including the header forms and clock skews a
// receiver meets in practice.
func TestSignVerifiedByReceiver(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"key1":"value1","n":[1,2,3]}`)
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	otherKey := []byte("some other key")

	tests := []struct {
		name    string
		secret  string
		signed  time.Time
		mutate  func(h http.Header, body []byte) []byte
		wantErr bool
	}{
		{name: "whsec secret", secret: secret, signed: now},
		{name: "raw secret", secret: "hash-value", signed: now},
		{name: "4m old", secret: secret, signed: now.Add(-4 * time.Minute)},
		{name: "6m old", secret: secret, signed: now.Add(-6 * time.Minute), wantErr: true},
		{name: "6m ahead", secret: secret, signed: now.Add(6 * time.Minute), wantErr: true},
		{
			name: "several signatures, ours last", secret: secret, signed: now,
			mutate: func(h http.Header, body []byte) []byte {
				other := Sign(otherKey, h.Get(HeaderWebhookID), now, body)
				h.Set(HeaderWebhookSignature, "v2,abc "+other+" "+h.Get(HeaderWebhookSignature))
				return body
			},
		},
		{
			name: "body changed", secret: secret, signed: now, wantErr: true,
			mutate: func(_ http.Header, body []byte) []byte {
				return append(bytes.Clone(body), ' ')
			},
		},
		{
			name: "id changed", secret: secret, signed: now, wantErr: true,
			mutate: func(h http.Header, body []byte) []byte {
				h.Set(HeaderWebhookID, "msg_other")
				return body
			},
		},
		{
			name: "timestamp changed within tolerance", secret: secret, signed: now, wantErr: true,
			mutate: func(h http.Header, body []byte) []byte {
				h.Set(HeaderWebhookTimestamp, strconv.FormatInt(now.Unix()-1, 10))
				return body
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := signedHeader(t, tt.secret, "msg_2b1", tt.signed, body)
			sent := body
			if tt.mutate != nil {
				sent = tt.mutate(h, body)
			}
			err := verifyAsReceiver(tt.secret, h, sent, now)
			if (err != nil) != tt.wantErr {
				t.Fatalf("verify: err = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

// TestSigningKey covers the three kinds of secretHash a job may carry.
func TestSigningKey(t *testing.T) {
	tests := []struct {
		name, secret string
		want         []byte
		wantErr      bool
	}{
		{name: "empty means unsigned", secret: "", want: nil},
		{name: "raw bytes", secret: "hash-value", want: []byte("hash-value")},
		{name: "raw that looks like base64", secret: "aGVsbG8=", want: []byte("aGVsbG8=")},
		{name: "whsec base64", secret: "whsec_aGVsbG8=", want: []byte("hello")},
		{name: "whsec bad base64", secret: "whsec_not*base64!", wantErr: true},
		{name: "whsec unpadded", secret: "whsec_aGVsbG8", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SigningKey(tt.secret)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("SigningKey(%q) = %q, want error", tt.secret, got)
				}
				if !errors.Is(err, errBadSecret) || !strings.Contains(err.Error(), "not valid base64") {
					t.Errorf("error %q does not say the whsec_ value is not valid base64", err)
				}
				// The secret must never reach logs through the error.
				if enc := strings.TrimPrefix(tt.secret, "whsec_"); strings.Contains(err.Error(), enc) {
					t.Errorf("error %q echoes the secret", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("SigningKey(%q): %v", tt.secret, err)
			}
			if !bytes.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Fatalf("SigningKey(%q) = %q, want %q", tt.secret, got, tt.want)
			}
		})
	}
}

// TestSignRawKey pins the raw-key path to a value computed independently of
// Sign, so a regression in key handling cannot cancel itself out.
func TestSignRawKey(t *testing.T) {
	key := []byte("hash-value")
	ts := time.Unix(1614265330, 999_999_999) // sub-second part is not signed
	body := []byte(`{"key1":"value1"}`)

	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("unique-webhook-id.1614265330." + string(body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))

	if got := Sign(key, "unique-webhook-id", ts, body); got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
}

// BenchmarkSign measures the per-attempt cost of signing a 1 KiB body:
// with a key seen for the first time, and by a worker whose last job had
// the same key.
func BenchmarkSign(b *testing.B) {
	key := []byte("0123456789abcdef0123456789abcdef")
	body := bytes.Repeat([]byte("a"), 1024)
	ts := time.Unix(1614265330, 0)
	b.Run("new-key", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", ts, body)
		}
	})
	b.Run("same-key", func(b *testing.B) {
		var s signer
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			s.sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", ts, body)
		}
	})
}

// TestSignerReusesStateOnlyForTheSameKey signs with a changing key through
// one signer: each signature must equal a fresh one.
func TestSignerReusesStateOnlyForTheSameKey(t *testing.T) {
	var s signer
	ts := time.Unix(1614265330, 0)
	for i, key := range [][]byte{[]byte("key-a"), []byte("key-a"), []byte("key-b"), []byte("key-a"), []byte("key-a")} {
		body := []byte(fmt.Sprintf(`{"n":%d}`, i))
		if got, want := s.sign(key, "id", ts, body), Sign(key, "id", ts, body); got != want {
			t.Errorf("signature %d with key %s: %q, want %q", i, key, got, want)
		}
	}
}

// The request sets header names in their canonical form directly.
func TestCanonicalHeaderNames(t *testing.T) {
	for name, canonical := range map[string]string{
		HeaderWebhookID: canonicalWebhookID, HeaderWebhookTimestamp: canonicalTimestamp,
		HeaderWebhookSignature: canonicalSignature, "content-type": canonicalContentType, "user-agent": canonicalUserAgent,
	} {
		if got := http.CanonicalHeaderKey(name); got != canonical {
			t.Errorf("canonical form of %q is %q, the engine uses %q", name, got, canonical)
		}
	}
}
