package reference

import (
	"net/http"
	"sync"
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
	seriesMu      sync.RWMutex
	series        map[[2]string]*requestSeries // by endpoint and reason
}

func newMetrics() *metrics {
	m := &metrics{
		reg:    prometheus.NewRegistry(),
		series: map[[2]string]*requestSeries{},
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

// requestSeries are the request counter and latency histogram of one endpoint and reason.
type requestSeries struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

// requestSeries returns the series of an endpoint and reason: their labels are looked up once,
// not per request.
func (m *metrics) requestSeries(endpoint, reason string) *requestSeries {
	key := [2]string{endpoint, reason}
	m.seriesMu.RLock()
	rs := m.series[key]
	m.seriesMu.RUnlock()
	if rs != nil {
		return rs
	}
	m.seriesMu.Lock()
	defer m.seriesMu.Unlock()
	if rs = m.series[key]; rs == nil {
		rs = &requestSeries{m.requests.WithLabelValues(endpoint, reason), m.latency.WithLabelValues(endpoint, reason)}
		m.series[key] = rs
	}
	return rs
}

// observeRequest records one answered KMS request.
func (m *metrics) observeRequest(endpoint, reason string, d time.Duration) {
	rs := m.requestSeries(endpoint, reason)
	rs.requests.Inc()
	rs.latency.Observe(d.Seconds())
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
