package devstack

import (
	"fmt"
	"io"
	"net"
	"strings"
	"text/template"
)

type bannerInfo struct {
	api, dashboard, redis, store string
	embeddedRedis, embeddedStore bool
}

var bannerTemplate = template.Must(template.New("banner").Parse(`
Sendhooks is running (dev stack: engine + monitor in one process)

  Dashboard   {{.Dashboard}}  (open: no login in the dev stack)
  API         {{.API}}/api/sendhooks/v1/hooks
  Redis       {{.Redis}}{{if .EmbeddedRedis}}  (embedded, in memory: nothing survives a restart){{end}}
  Store       {{.Store}}{{if .EmbeddedStore}}  (SQLite, under the data dir){{else}}  (MongoDB){{end}}
  Engine      allows private networks and retries after {{.Schedule}} (dev settings)

Send a first webhook, signed, to the built-in demo receiver:

  redis-cli -p {{.RedisPort}} XADD hooks '*' data '{"url":"{{.API}}/demo/receiver/ok","webhookId":"hello-1","data":{"hello":"world"},"secretHash":"{{.Secret}}"}'

or without redis-cli:

  curl -X POST {{.API}}/demo/send -d '{"url":"{{.API}}/demo/receiver/flaky","webhookId":"hello-2","data":{"hello":"again"},"secretHash":"{{.Secret}}"}'

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
	})
	if err != nil {
		fmt.Fprintln(w, "sendhooks-dev: print banner:", err)
	}
}
