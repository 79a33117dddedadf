package reference

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus metrics, on a registry of its own.
type metrics struct {
	reg           *prometheus.Registry
	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	issued        prometheus.Counter
	commitLatency prometheus.Histogram
	commitSize    prometheus.Histogram
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kms_requests_total",
			Help: "KMS requests answered, by endpoint and ResultReason (empty: Success)."}, []string{"endpoint", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kms_request_duration_seconds",
			Help: "Time to answer a KMS request, by endpoint and ResultReason.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)},
			[]string{"endpoint", "reason"}),
		issued: prometheus.NewCounter(prometheus.CounterOpts{Name: "kms_counters_issued_total",
			Help: "Counters handed out with M1-M5."}),
		commitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "store_commit_duration_seconds",
			Help: "Time of one store commit.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		commitSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "store_commit_changes",
			Help: "Changes one store commit carried (group commit).", Buckets: prometheus.ExponentialBuckets(1, 2, 10)}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.issued, m.commitLatency, m.commitSize,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observeRequest records one answered KMS request.
func (m *metrics) observeRequest(endpoint, reason string, d time.Duration) {
	m.requests.WithLabelValues(endpoint, reason).Inc()
	m.latency.WithLabelValues(endpoint, reason).Observe(d.Seconds())
	if endpoint == "provision" && reason == "" {
		m.issued.Inc()
	}
}

// observeCommit records one store commit.
func (m *metrics) observeCommit(changes int, d time.Duration) {
	m.commitLatency.Observe(d.Seconds())
	m.commitSize.Observe(float64(changes))
}

func (m *metrics) handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }
