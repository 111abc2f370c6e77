package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// RefusedAddrError is the error for a destination the SSRF guard will not
// connect to: jobs name arbitrary URLs, and without the guard a producer
// could make the engine reach loopback services, the private network or a
// cloud metadata endpoint on its behalf.
type RefusedAddrError struct {
	// Addr is the address that was refused, as it was given (an IPv6 form
	// embedding an IPv4 address is reported as given, not unwrapped).
	Addr netip.Addr
	// Reason says what kind of address it is, e.g. "a private address".
	Reason string
}

// Error says which address was refused, why, and how to allow it.
func (e *RefusedAddrError) Error() string {
	return fmt.Sprintf("destination %s is %s; set allowPrivateNetworks to allow it", e.Addr, e.Reason)
}

// IsRefused reports whether err, or any error it wraps (a *url.Error from
// http.Client, a *net.OpError, ...), is a *RefusedAddrError.
func IsRefused(err error) bool {
	_, ok := errors.AsType[*RefusedAddrError](err)
	return ok
}

// Reasons shared by several ranges.
const (
	reasonPrivate   = "a private address"
	reasonMetadata  = "the cloud metadata address"
	reasonReserved  = "a reserved address"
	reasonDocs      = "a documentation address"
	reasonBenchmark = "a benchmarking address"
)

// refusedRange is one block of addresses that is not public unicast.
type refusedRange struct {
	prefix netip.Prefix
	reason string
}

// refusedRanges lists the special-purpose blocks (after the IANA IPv4 and
// IPv6 special-purpose registries) the guard refuses. The first match
// wins, so single addresses come before the blocks that contain them to
// give the more telling reason.
//
// Documentation ranges are refused: nothing legitimate listens there on the
// Internet, and networks that reuse them internally are exactly what the
// guard protects.
var refusedRanges = []refusedRange{
	// Single addresses with a more specific meaning than their block.
	{netip.MustParsePrefix("169.254.169.254/32"), reasonMetadata}, // AWS, GCP, Azure, ...
	{netip.MustParsePrefix("100.100.100.200/32"), reasonMetadata}, // Alibaba Cloud
	{netip.MustParsePrefix("192.0.0.192/32"), reasonMetadata},     // Oracle Cloud
	{netip.MustParsePrefix("fd00:ec2::254/128"), reasonMetadata},  // AWS over IPv6
	{netip.MustParsePrefix("0.0.0.0/32"), "an unspecified address"},
	{netip.MustParsePrefix("::/128"), "an unspecified address"},
	{netip.MustParsePrefix("255.255.255.255/32"), "a broadcast address"},

	// IPv4.
	{netip.MustParsePrefix("0.0.0.0/8"), `a "this network" address`},
	{netip.MustParsePrefix("10.0.0.0/8"), reasonPrivate},
	{netip.MustParsePrefix("100.64.0.0/10"), "a shared (carrier-grade NAT) address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address"},
	{netip.MustParsePrefix("172.16.0.0/12"), reasonPrivate},
	{netip.MustParsePrefix("192.0.0.0/24"), "an IETF protocol assignment address"},
	{netip.MustParsePrefix("192.0.2.0/24"), reasonDocs},
	{netip.MustParsePrefix("192.88.99.0/24"), "a 6to4 relay anycast address"},
	{netip.MustParsePrefix("192.168.0.0/16"), reasonPrivate},
	{netip.MustParsePrefix("198.18.0.0/15"), reasonBenchmark},
	{netip.MustParsePrefix("198.51.100.0/24"), reasonDocs},
	{netip.MustParsePrefix("203.0.113.0/24"), reasonDocs},
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
	{netip.MustParsePrefix("240.0.0.0/4"), reasonReserved},

	// IPv6. Anything outside 2000::/3 is refused after this list anyway;
	// these entries give the reason a reader expects.
	{netip.MustParsePrefix("::1/128"), "a loopback address"},
	{netip.MustParsePrefix("fc00::/7"), reasonPrivate},
	{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
	{netip.MustParsePrefix("ff00::/8"), "a multicast address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "a local-use NAT64 address"},
	{netip.MustParsePrefix("2001:2::/48"), reasonBenchmark},
	{netip.MustParsePrefix("2001:10::/28"), reasonReserved}, // deprecated ORCHID
	{netip.MustParsePrefix("2001:db8::/32"), reasonDocs},
	{netip.MustParsePrefix("3fff::/20"), reasonDocs},
}

// globalUnicast6 is the only IPv6 block IANA allocates for global unicast;
// everything else (IPv4-compatible ::/96, discard-only 100::/64, the
// deprecated site-local fec0::/10, unassigned space) is refused.
var globalUnicast6 = netip.MustParsePrefix("2000::/3")

// Prefixes of IPv6 forms that carry an IPv4 address, which is judged in
// their place: otherwise ::ffff:10.0.0.1 or 2002:a00:1:: would smuggle a
// private IPv4 destination past a check that only looks at IPv6 ranges.
var (
	nat64Prefix  = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052
	sixToFour    = netip.MustParsePrefix("2002::/16")    // RFC 3056
	teredoPrefix = netip.MustParsePrefix("2001::/32")    // RFC 4380
)

// CheckAddr returns nil if ip is a public unicast address the engine may
// deliver to, and a *RefusedAddrError saying what it is otherwise. An IPv6
// zone is ignored for the check; IPv6 addresses embedding an IPv4 address
// (IPv4-mapped, NAT64, 6to4, Teredo) are judged by the embedded address.
func CheckAddr(ip netip.Addr) error {
	if reason := refusalReason(ip.WithZone("")); reason != "" {
		return &RefusedAddrError{Addr: ip, Reason: reason}
	}
	return nil
}

// refusalReason says why ip is refused, or "" if it is public unicast.
func refusalReason(ip netip.Addr) string {
	if !ip.IsValid() {
		return "an invalid address"
	}
	if v4, form, ok := embeddedIPv4(ip); ok {
		if reason := refusalReason(v4); reason != "" {
			return fmt.Sprintf("%s (IPv4 %s embedded in %s address)", reason, v4, form)
		}
		return ""
	}
	for _, r := range refusedRanges {
		if r.prefix.Contains(ip) {
			return r.reason
		}
	}
	if ip.Is6() && !globalUnicast6.Contains(ip) {
		return reasonReserved
	}
	return ""
}

// embeddedIPv4 extracts the IPv4 address carried by an IPv6 address of one
// of the translation or tunnelling forms, naming the form for the error.
func embeddedIPv4(ip netip.Addr) (v4 netip.Addr, form string, ok bool) {
	if !ip.Is6() {
		return netip.Addr{}, "", false
	}
	b := ip.As16()
	switch {
	case ip.Is4In6():
		return ip.Unmap(), "an IPv4-mapped", true
	case nat64Prefix.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), "a NAT64", true
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6])), "a 6to4", true
	case teredoPrefix.Contains(ip):
		// The Teredo client's address is stored bit-inverted.
		return netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]}), "a Teredo", true
	}
	return netip.Addr{}, "", false
}

// resolver is the part of *net.Resolver the Dialer uses; tests supply
// fakes to script DNS answers.
type resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// dialFunc opens one connection to an address already checked.
type dialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// minAttemptTime is the least time one address gets when a deadline is
// shared between several, as net.Dialer does.
const minAttemptTime = 2 * time.Second

// Dialer connects only to addresses CheckAddr allows (unless AllowPrivate)
// and cannot be sidestepped by DNS rebinding: it resolves a name once,
// checks every answer, and dials the checked IP literally, so a second,
// different DNS answer is never consulted. Use its DialContext as an
// http.Transport's DialContext.
type Dialer struct {
	// AllowPrivate turns the guard off (the allowPrivateNetworks setting),
	// for receivers on the local network and for tests.
	AllowPrivate bool
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver resolver
	// Timeout bounds resolving and connecting together; zero means no
	// limit beyond the context's.
	Timeout time.Duration
	// KeepAlive is the TCP keep-alive period, as for net.Dialer.
	KeepAlive time.Duration

	// dial replaces the real connect in tests, to record what would be
	// dialed without sending a packet; nil means a net.Dialer.
	dial dialFunc
}

// DialContext connects to address ("host:port") on a TCP or UDP network
// after checking every address host stands for. It refuses the whole
// destination if any resolved address is refused, so a name cannot mix a
// public answer with a private one and hope the private one is tried.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", address, err)
	}
	addrs, err := d.checkedAddrs(ctx, network, host)
	if err != nil {
		return nil, err
	}
	return d.dialInOrder(ctx, network, addrs, port)
}

// CheckHost resolves host and checks every address it stands for, as
// DialContext does, without connecting: for a receiver reached through a
// proxy, which connects to it itself. With the guard off it does nothing.
func (d *Dialer) CheckHost(ctx context.Context, host string) error {
	if d.AllowPrivate {
		return nil
	}
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	_, err := d.checkedAddrs(ctx, "tcp", host)
	return err
}

// checkedAddrs returns the addresses host stands for, all of them allowed.
func (d *Dialer) checkedAddrs(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if host == "" {
		// net.Dial would read an empty host as "this machine".
		return nil, errors.New("dial: missing host")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if err := d.check(ip); err != nil {
			return nil, err
		}
		return []netip.Addr{ip.Unmap()}, nil
	}
	answers, err := d.resolve(ctx, network, host)
	if err != nil {
		return nil, err
	}
	checked := make([]netip.Addr, 0, len(answers))
	for _, ip := range answers {
		if err := d.check(ip); err != nil {
			return nil, fmt.Errorf("refusing to connect to %s: %w", host, err)
		}
		// Dial the plain IPv4 form: resolvers may answer IPv4-mapped
		// addresses, which an IPv4-only network would not accept.
		checked = append(checked, ip.Unmap())
	}
	return checked, nil
}

// check applies CheckAddr unless the guard is off.
func (d *Dialer) check(ip netip.Addr) error {
	if d.AllowPrivate {
		return nil
	}
	return CheckAddr(ip)
}

// resolve looks host up once, for the address family network asks for.
func (d *Dialer) resolve(ctx context.Context, network, host string) ([]netip.Addr, error) {
	family, err := ipNetwork(network)
	if err != nil {
		return nil, err
	}
	r := d.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, family, host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("resolve %s: no addresses", host)
	}
	return addrs, nil
}

// ipNetwork maps a dial network to the resolver's: "tcp4" → "ip4".
func ipNetwork(network string) (string, error) {
	for _, transport := range []string{"tcp", "udp"} {
		if family, ok := strings.CutPrefix(network, transport); ok {
			switch family {
			case "", "4", "6":
				return "ip" + family, nil
			}
		}
	}
	return "", fmt.Errorf("dial: unsupported network %q", network)
}

// dialInOrder tries addrs one after the other until one connects, and
// returns the first error if none does, as net.Dialer does.
func (d *Dialer) dialInOrder(ctx context.Context, network string, addrs []netip.Addr, port string) (net.Conn, error) {
	dial := d.dial
	if dial == nil {
		dial = d.netDialer().DialContext
	}
	var firstErr error
	for i, ip := range addrs {
		attemptCtx, cancel := attemptContext(ctx, len(addrs)-i)
		conn, err := dial(attemptCtx, network, net.JoinHostPort(ip.String(), port))
		cancel()
		if err == nil {
			return conn, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, firstErr
}

// attemptContext gives one of remaining addresses its share of the
// deadline, so an unresponsive first address leaves time for the others.
func attemptContext(ctx context.Context, remaining int) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok || remaining <= 1 {
		return ctx, func() {}
	}
	left := time.Until(deadline)
	share := max(left/time.Duration(remaining), min(minAttemptTime, left))
	return context.WithTimeout(ctx, share)
}

// netDialer is the real connector. Its Control re-checks the address the
// socket is about to connect to: the literal dialed above should already
// be checked, and this keeps it so if that ever stops being true.
func (d *Dialer) netDialer() *net.Dialer {
	nd := &net.Dialer{KeepAlive: d.KeepAlive}
	if !d.AllowPrivate {
		nd.Control = controlCheck
	}
	return nd
}

// controlCheck is a net.Dialer Control func refusing disallowed addresses
// right before connect(2). It fails closed on an address it cannot parse.
func controlCheck(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dial %s %s: cannot check address: %w", network, address, err)
	}
	return CheckAddr(ap.Addr())
}
