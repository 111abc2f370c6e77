package engine

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// conn is a keep-alive HTTP/1.1 connection to one receiver. A worker that
// takes it from the pool uses it alone, writing the request and reading the
// answer itself: no goroutines of its own, unlike http.Transport's two per
// connection, whose hand-offs cost more than the request on loopback.
type conn struct {
	net.Conn
	raw       net.Conn  // the TCP connection, under TLS for https
	key       string    // the pool's key: scheme and dial address, after the proxy's URL if any
	forward   *proxyHop // the proxy requests are sent to in absolute form; nil: origin form
	br        *bufio.Reader
	bw        *bufio.Writer
	head      *headLimit // bounds what br reads while an answer's head is read
	reused    bool       // it has carried a request before this one
	idleSince time.Time  // when it went back to the pool
}

// connPool keeps idle connections by receiver, up to a bound in all and
// per receiver, for up to idleTimeout.
type connPool struct {
	guard       *Dialer     // connects to receivers, and checks those reached through a proxy
	dialProxy   dialFunc    // connects to proxies, which the guard does not check
	tls         *tls.Config // cloned per connection with its server name
	maxIdle     int
	maxPerKey   int
	idleTimeout time.Duration

	mu        sync.Mutex
	idle      map[string][]*conn // most recently used last
	nIdle     int
	lastSweep time.Time
}

// sessionCacheSize is how many receivers' TLS sessions are kept for
// resumption, which spares a reconnecting worker the full handshake.
const sessionCacheSize = 256

func newConnPool(guard *Dialer, maxIdle, maxPerKey int) *connPool {
	proxyDialer := &net.Dialer{Timeout: guard.Timeout, KeepAlive: guard.KeepAlive}
	return &connPool{
		guard:     guard,
		dialProxy: proxyDialer.DialContext,
		tls: &tls.Config{
			MinVersion:         tls.VersionTLS12,
			ClientSessionCache: tls.NewLRUClientSessionCache(sessionCacheSize),
		},
		maxIdle:     maxIdle,
		maxPerKey:   maxPerKey,
		idleTimeout: 90 * time.Second,
		idle:        make(map[string][]*conn),
	}
}

// checkAfter is how long a connection may sit idle and still be taken
// without the peek that checks it (idleConnUsable). The peek is a system
// call on every delivery of a busy receiver, whose connections are back
// in use within milliseconds; a receiver closes an idle connection, or
// sends a 408 unasked before closing it, when its idle timeout ends,
// seconds later. Should one do so sooner, the attempt is made again once
// on a new connection (errStaleConn: exchange treats a 408 on a kept
// connection as it does a close). A receiver that sends some other answer
// unasked within checkAfter has it taken for the next request's: that
// receiver's own jobs get each other's outcomes, as they would from a
// receiver that answers at random.
const checkAfter = 100 * time.Millisecond

// takeIdle returns a kept connection to the receiver key names, or nil.
// The peek that checks a connection idle for longer than checkAfter is
// made outside the pool's lock, which every worker takes for every
// delivery.
func (p *connPool) takeIdle(key string) *conn {
	for {
		c := p.popIdle(key)
		if c == nil {
			return nil
		}
		idle := time.Since(c.idleSince)
		if idle < checkAfter || idle < p.idleTimeout && idleConnUsable(c.raw) {
			c.reused = true
			return c
		}
		_ = c.Close()
	}
}

// popIdle takes the most recently used idle connection to key off the
// pool, or returns nil when there is none.
func (p *connPool) popIdle(key string) *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.idle[key]
	if len(list) == 0 {
		return nil
	}
	c := list[len(list)-1]
	list[len(list)-1] = nil
	if list = list[:len(list)-1]; len(list) == 0 {
		delete(p.idle, key)
	} else {
		p.idle[key] = list
	}
	p.nIdle--
	return c
}

// connect dials t's receiver, through the TLS handshake for https, which
// must be done by deadline.
func (p *connPool) connect(ctx context.Context, t target, deadline time.Time) (*conn, error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	raw, err := p.guard.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	if err := raw.SetDeadline(deadline); err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("connection to %s: %w", t.addr, err)
	}
	nc := raw
	if t.tls {
		tc := tls.Client(raw, p.tlsFor(t.hostname))
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", t.addr, err)
		}
		nc = tc
	}
	return newConn(nc, raw, t.key), nil
}

// tlsFor is the TLS configuration for a server of that name. Every one
// shares the pool's session cache.
func (p *connPool) tlsFor(serverName string) *tls.Config {
	cfg := p.tls.Clone()
	cfg.ServerName = serverName
	return cfg
}

// newConn wraps nc, which runs over the TCP connection raw, for the pool.
func newConn(nc, raw net.Conn, key string) *conn {
	head := &headLimit{r: nc, left: -1}
	return &conn{Conn: nc, raw: raw, key: key, head: head, br: bufio.NewReaderSize(head, 4<<10), bw: bufio.NewWriterSize(nc, 4<<10)}
}

// maxAnswerHead bounds the status line and headers of a receiver's answer
// (informational answers included): http.ReadResponse reads a head of
// any length into memory, so a receiver streaming headers without end
// would hold a worker until the request timeout and grow its memory.
const maxAnswerHead = 64 << 10

// errAnswerHeadTooLarge fails an attempt whose answer's head exceeds
// maxAnswerHead.
var errAnswerHeadTooLarge = fmt.Errorf("the receiver's answer exceeds the %d KiB limit on its status line and headers", maxAnswerHead>>10)

// headLimit lets a connection's reader take at most left bytes, then
// fails with errAnswerHeadTooLarge; left < 0 is no limit. The worker
// using the connection sets it around reading an answer's head: the
// buffered reader over it then never holds more of the connection than
// that.
type headLimit struct {
	r    io.Reader
	left int64
}

func (l *headLimit) Read(p []byte) (int, error) {
	if l.left < 0 {
		return l.r.Read(p)
	}
	if l.left == 0 {
		return 0, errAnswerHeadTooLarge
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// put hands back a connection whose last answer was read to its end.
func (p *connPool) put(c *conn) {
	now := time.Now()
	c.idleSince = now
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Sub(p.lastSweep) > p.idleTimeout/2 {
		p.lastSweep = now
		p.sweepLocked(now)
	}
	if p.nIdle >= p.maxIdle || len(p.idle[c.key]) >= p.maxPerKey {
		_ = c.Close()
		return
	}
	p.idle[c.key] = append(p.idle[c.key], c)
	p.nIdle++
}

// sweepLocked closes the connections idle for longer than idleTimeout;
// the oldest of each receiver's list come first.
func (p *connPool) sweepLocked(now time.Time) {
	for key, list := range p.idle {
		n := 0
		for n < len(list) && now.Sub(list[n].idleSince) >= p.idleTimeout {
			_ = list[n].Close()
			n++
		}
		if n == len(list) {
			delete(p.idle, key)
		} else if n > 0 {
			p.idle[key] = append(list[:0], list[n:]...)
		}
		p.nIdle -= n
	}
}

// closeIdle closes every idle connection.
func (p *connPool) closeIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, list := range p.idle {
		for _, c := range list {
			_ = c.Close()
		}
	}
	clear(p.idle)
	p.nIdle = 0
}
