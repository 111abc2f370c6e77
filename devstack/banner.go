package devstack

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"text/template"
)

type bannerInfo struct {
	api, dashboard, redis, store string
	embeddedRedis, embeddedStore bool
	exposed                      []exposure // listeners other machines can reach
}

// exposure is a listener of the stack on an address other machines can
// reach.
type exposure struct {
	Part, Addr, Flag string
}

// exposed lists the stack's listeners whose bound address is not a
// loopback one. A real Redis given by -redis-url is the user's own.
func exposed(b bannerInfo) []exposure {
	var e []exposure
	if !isLoopback(b.api) {
		e = append(e, exposure{"API", b.api, "-api-addr"})
	}
	if !isLoopback(b.dashboard) {
		e = append(e, exposure{"Dashboard", b.dashboard, "-dashboard-addr"})
	}
	if b.embeddedRedis && !isLoopback(b.redis) {
		e = append(e, exposure{"Redis", b.redis, "-redis-addr"})
	}
	return e
}

// isLoopback says whether a listener's bound address (ip:port) is only
// reachable from this machine.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

var bannerTemplate = template.Must(template.New("banner").Parse(`
Sendhooks is running (dev stack: engine + monitor in one process)
{{if .Exposed}}
  WARNING: reachable from the network, without login:
{{range .Exposed}}    {{printf "%-10s" .Part}} {{.Addr}}  ({{.Flag}})
{{end}}  Anyone who can reach these can read and retry every webhook, and have the engine, which may
  reach private networks here, send requests to any address. Keep the 127.0.0.1 defaults unless
  this machine's network is yours alone.
{{end}}
  Dashboard   {{.Dashboard}}  (open: no login in the dev stack)
  API         {{.API}}/api/sendhooks/v1/hooks
  Redis       {{.Redis}}{{if .EmbeddedRedis}}  (embedded, in memory: nothing survives a restart){{end}}
  Store       {{.Store}}{{if .EmbeddedStore}}  (SQLite, under the data dir){{else}}  (MongoDB){{end}}
  Engine      allows private networks and retries after {{.Schedule}} (dev settings)

Send a first webhook, signed, to the built-in demo receiver:

  redis-cli -p {{.RedisPort}} XADD hooks '*' data '{"url":"{{.API}}/demo/receiver/ok","webhookId":"hello-1","data":{"hello":"world"},"secretHash":"{{.Secret}}"}'

or without redis-cli:

  curl -X POST {{.API}}/demo/send -H 'Content-Type: application/json' -d '{"url":"{{.API}}/demo/receiver/flaky","webhookId":"hello-2","data":{"hello":"again"},"secretHash":"{{.Secret}}"}'

then see it on {{.Dashboard}} or:  curl {{.API}}/api/sendhooks/v1/hooks
Receivers: /demo/receiver/ok, /demo/receiver/flaky (fails twice), /demo/receiver/fail (always).
Stop with Ctrl-C.
`))

func printBanner(w io.Writer, b bannerInfo) {
	_, port, _ := net.SplitHostPort(b.redis)
	schedule := make([]string, len(RetrySchedule))
	for i, d := range RetrySchedule {
		schedule[i] = d.String()
	}
	err := bannerTemplate.Execute(w, map[string]any{
		"API":           "http://" + loopbackAddr(b.api),
		"Dashboard":     "http://" + loopbackAddr(b.dashboard),
		"Redis":         b.redis,
		"RedisPort":     port,
		"Store":         b.store,
		"EmbeddedRedis": b.embeddedRedis,
		"EmbeddedStore": b.embeddedStore,
		"Schedule":      strings.Join(schedule, ", "),
		"Secret":        DemoSecret,
		"Exposed":       b.exposed,
	})
	if err != nil {
		fmt.Fprintln(w, "sendhooks-dev: print banner:", err)
	}
}
