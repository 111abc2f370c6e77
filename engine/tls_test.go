package engine

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// handshakeCounter is an https receiver that counts, on its side, the
// full TLS handshakes and the resumed ones.
type handshakeCounter struct {
	*httptest.Server
	full, resumed atomic.Int64
}

func newHandshakeCounter(t *testing.T, maxVersion uint16) *handshakeCounter {
	t.Helper()
	hc := &handshakeCounter{}
	hc.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, "ok")
	}))
	hc.TLS = &tls.Config{
		MaxVersion: maxVersion,
		// Called by the server at the end of every handshake, full or
		// resumed.
		VerifyConnection: func(cs tls.ConnectionState) error {
			if cs.DidResume {
				hc.resumed.Add(1)
			} else {
				hc.full.Add(1)
			}
			return nil
		},
	}
	hc.StartTLS()
	t.Cleanup(hc.Close)
	return hc
}

func (hc *handshakeCounter) counts() (full, resumed int64) {
	return hc.full.Load(), hc.resumed.Load()
}

// TestTLSSessionsAreResumed makes three attempts at an https receiver,
// closing the kept connection after each: the first connection makes the
// full handshake, the next two resume its session, for TLS 1.3 and 1.2,
// directly and through a CONNECT proxy.
func TestTLSSessionsAreResumed(t *testing.T) {
	for _, v := range []struct {
		name string
		max  uint16
	}{{"TLS 1.3", tls.VersionTLS13}, {"TLS 1.2", tls.VersionTLS12}} {
		for _, proxied := range []bool{false, true} {
			name := v.name + " direct"
			if proxied {
				name = v.name + " through a proxy"
			}
			t.Run(name, func(t *testing.T) {
				hc := newHandshakeCounter(t, v.max)
				d := testDeliverer(t)
				url := hc.URL
				if proxied {
					tp := startTestProxy(t)
					d = proxiedDeliverer(t, tp.url, "", hostResolver{})
					url = "https://hooks.example.com:" + port(t, hc.URL)
					defer func() {
						if c := tp.connects.Load(); c != 3 {
							t.Errorf("the proxy opened %d tunnels, want 3", c)
						}
					}()
				}
				trust(d, hc.Server)
				for i := range 3 {
					res := deliverTo(t, d, url+"/hook")
					if res.err != nil || res.statusCode != 200 {
						t.Fatalf("attempt %d: status %d, err %v", i+1, res.statusCode, res.err)
					}
					d.conns.closeIdle() // the next attempt needs a new connection
				}
				if full, resumed := hc.counts(); full != 1 || resumed != 2 {
					t.Errorf("the receiver saw %d full handshakes and %d resumed, want 1 and 2", full, resumed)
				}
			})
		}
	}
}

// TestTLSSessionCachePerDeliverer checks that two deliverers do not share
// sessions (each has its own cache) while one deliverer's connections all
// use the one cache: the control that resumption above comes from it.
func TestTLSSessionCachePerDeliverer(t *testing.T) {
	hc := newHandshakeCounter(t, tls.VersionTLS13)
	for i := range 2 {
		d := testDeliverer(t)
		trust(d, hc.Server)
		for range 2 {
			if res := deliverTo(t, d, hc.URL+"/hook"); res.err != nil {
				t.Fatalf("deliverer %d: %v", i+1, res.err)
			}
			d.conns.closeIdle()
		}
	}
	if full, resumed := hc.counts(); full != 2 || resumed != 2 {
		t.Errorf("two deliverers, two connections each: %d full handshakes and %d resumed, want 2 and 2", full, resumed)
	}
}
