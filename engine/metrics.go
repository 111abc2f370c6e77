package engine

import (
	"context"
	"math"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the engine's Prometheus metrics, on a registry of its own so
// that several engines can live in one process (tests, the dev stack).
type metrics struct {
	registry *prometheus.Registry
	// Final outcomes of jobs, and HTTP attempts by result. The labelled
	// counters are looked up once, not on every delivery.
	succeeded, failed, badJobs prometheus.Counter
	attemptsOK, attemptsFailed prometheus.Counter
	latency                    prometheus.Histogram
	inFlight                   prometheus.Gauge
	retries                    prometheus.Counter
	expired                    prometheus.Counter
	panics                     prometheus.Counter
	// trimmedBy counts the entries trimmed from each stream, by name.
	trimmedBy map[string]prometheus.Counter
	ready     func(context.Context) error
}

func newMetrics(e *Engine) *metrics {
	jobs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sendhooks_jobs_total",
		Help: "Jobs that reached a final outcome, by outcome (success, failed, bad_job).",
	}, []string{"outcome"})
	attempts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sendhooks_attempts_total",
		Help: "HTTP delivery attempts, by result (success, failure).",
	}, []string{"result"})
	m := &metrics{
		registry:       prometheus.NewRegistry(),
		succeeded:      jobs.WithLabelValues("success"),
		failed:         jobs.WithLabelValues("failed"),
		badJobs:        jobs.WithLabelValues("bad_job"),
		attemptsOK:     attempts.WithLabelValues("success"),
		attemptsFailed: attempts.WithLabelValues("failure"),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sendhooks_attempt_duration_seconds",
			Help:    "Duration of HTTP delivery attempts, from request start to the end of the response body.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sendhooks_in_flight",
			Help: "HTTP delivery attempts in progress.",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sendhooks_retries_scheduled_total",
			Help: "Failed attempts for which another attempt was scheduled.",
		}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sendhooks_jobs_left_for_a_claim_total",
			Help: "Jobs that waited for a worker past visibilityTimeout minus requestTimeout since their idle time was last reset (Redis could not be reached to reset it) and were left pending to be claimed again.",
		}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sendhooks_panics_total",
			Help: "Panics recovered while the engine read or handled a job, instead of ending the engine: the job ends failed, as a bad job when reading it, dead-lettered when handling it (the log has each panic's stack).",
		}),
		ready: func(ctx context.Context) error { return e.rdb.Ping(ctx).Err() },
	}
	trimmed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sendhooks_stream_trimmed_entries_total",
		Help: "Entries this engine trimmed from the jobs, status and dead-letter streams, by stream.",
	}, []string{"stream"})
	m.trimmedBy = map[string]prometheus.Counter{}
	var lengths []prometheus.Collector
	for _, stream := range []string{e.keys.jobs, e.keys.status, e.keys.dead} {
		m.trimmedBy[stream] = trimmed.WithLabelValues(stream)
		lengths = append(lengths, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "sendhooks_stream_length",
			Help:        "Entries in the jobs, status and dead-letter streams (XLEN), by stream.",
			ConstLabels: prometheus.Labels{"stream": stream},
		}, redisGauge(func(ctx context.Context) (int64, error) {
			return e.rdb.XLen(ctx, stream).Result()
		})))
	}
	m.registry.MustRegister(lengths...)
	m.registry.MustRegister(trimmed, jobs, attempts, m.latency, m.inFlight, m.retries, m.expired, m.panics,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "sendhooks_jobs_waiting",
			Help:        "Jobs read by this engine and waiting for a worker within their host group's share, by how they are held: in memory, or parked as ids.",
			ConstLabels: prometheus.Labels{"held": "memory"},
		}, func() float64 { q, _, _ := e.sched.counts(); return float64(q) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "sendhooks_jobs_waiting",
			Help:        "Jobs read by this engine and waiting for a worker within their host group's share, by how they are held: in memory, or parked as ids.",
			ConstLabels: prometheus.Labels{"held": "parked"},
		}, func() float64 { _, p, _ := e.sched.counts(); return float64(p) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sendhooks_host_groups_active",
			Help: "Receiver host groups with jobs waiting or in flight in this engine, which share the workers.",
		}, func() float64 { _, _, g := e.sched.counts(); return float64(g) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sendhooks_retry_set_size",
			Help: "Jobs waiting in the retry set for their next attempt.",
		}, redisGauge(func(ctx context.Context) (int64, error) {
			return e.rdb.ZCard(ctx, e.keys.retry).Result()
		})),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sendhooks_consumer_lag",
			Help: "Entries of the jobs stream not yet read by the consumer group.",
		}, redisGauge(e.consumerLag)),
	)
	return m
}

// redisGauge reads a gauge from Redis at scrape time; NaN when Redis does
// not answer, so a scrape never hangs on it.
func redisGauge(read func(context.Context) (int64, error)) func() float64 {
	return func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, err := read(ctx)
		if err != nil {
			return math.NaN()
		}
		return float64(n)
	}
}

// consumerLag is the group's lag as Redis reports it (Redis 7 and later).
func (e *Engine) consumerLag(ctx context.Context) (int64, error) {
	groups, err := e.rdb.XInfoGroups(ctx, e.keys.jobs).Result()
	if err != nil {
		return 0, err
	}
	for _, g := range groups {
		if g.Name == e.keys.group {
			return g.Lag, nil
		}
	}
	return 0, nil
}

// trimmed counts n entries trimmed from stream.
func (m *metrics) trimmed(stream string, n int64) {
	if c, ok := m.trimmedBy[stream]; ok {
		c.Add(float64(n))
	}
}

func (m *metrics) observeAttempt(res attemptResult) {
	m.latency.Observe(res.duration.Seconds())
	if res.err == nil {
		m.attemptsOK.Inc()
	} else {
		m.attemptsFailed.Inc()
	}
}

func (m *metrics) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := m.ready(ctx); err != nil {
			http.Error(w, "not ready: redis: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}
