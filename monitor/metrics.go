package monitor

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the monitor's Prometheus metrics.
type Metrics struct {
	ingested      prometheus.Counter
	parseFailures prometheus.Counter
	writeFailures prometheus.Counter
	lag           prometheus.Gauge
	pending       prometheus.Gauge
	pruned        prometheus.Counter
	rejected      prometheus.Counter
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "sendhooks_monitor_" + name, Help: help})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: "sendhooks_monitor_" + name, Help: help})
	}
	m := &Metrics{
		ingested:      counter("events_ingested_total", "Status events stored and acknowledged."),
		parseFailures: counter("event_parse_failures_total", "Status events that could not be parsed; they are set aside in the rejected stream and acknowledged."),
		writeFailures: counter("write_failures_total", "Batch writes to the store that failed and are retried."),
		lag:           gauge("lag_events", "Status events in the stream not yet read by the consumer group."),
		pending:       gauge("pending_events", "Status events read by the consumer group but not yet acknowledged."),
		pruned:        counter("webhooks_pruned_total", "Webhooks removed because they were older than RETENTION."),
		rejected:      counter("events_rejected_total", "Status events the store refuses for good; they are set aside in the rejected stream and acknowledged."),
	}
	reg.MustRegister(m.ingested, m.parseFailures, m.writeFailures, m.lag, m.pending, m.pruned, m.rejected)
	return m
}
