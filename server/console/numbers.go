package console

import (
	"net/http"
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// requestCount is one row of the numbers page: requests of one endpoint and outcome.
type requestCount struct {
	Endpoint, Reason string
	Count            uint64
	MeanMillis       float64
}

// numbersView is the numbers page's data, read from the metrics /metrics serves.
type numbersView struct {
	Requests         []requestCount
	RequestsTotal    uint64
	CountersIssued   float64
	Commits          uint64
	CommitMeanMillis float64
	ChangesPerCommit float64
}

// label returns a metric's label value.
func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// mean returns a histogram's mean in milliseconds (0 without observations).
func mean(h *dto.Histogram) float64 {
	if h.GetSampleCount() == 0 {
		return 0
	}
	return 1000 * h.GetSampleSum() / float64(h.GetSampleCount())
}

// readNumbers turns gathered metric families into the numbers page's data.
func readNumbers(families []*dto.MetricFamily) numbersView {
	var v numbersView
	latency := map[string]float64{}
	for _, f := range families {
		switch f.GetName() {
		case "kms_request_duration_seconds":
			for _, m := range f.GetMetric() {
				latency[label(m, "endpoint")+"\x00"+label(m, "reason")] = mean(m.GetHistogram())
			}
		case "kms_counters_issued_total":
			for _, m := range f.GetMetric() {
				v.CountersIssued += m.GetCounter().GetValue()
			}
		case "store_commit_duration_seconds":
			for _, m := range f.GetMetric() {
				v.Commits, v.CommitMeanMillis = m.GetHistogram().GetSampleCount(), mean(m.GetHistogram())
			}
		case "store_commit_changes":
			for _, m := range f.GetMetric() {
				if h := m.GetHistogram(); h.GetSampleCount() > 0 {
					v.ChangesPerCommit = h.GetSampleSum() / float64(h.GetSampleCount())
				}
			}
		}
	}
	for _, f := range families {
		if f.GetName() != "kms_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			rc := requestCount{Endpoint: label(m, "endpoint"), Reason: label(m, "reason"), Count: uint64(m.GetCounter().GetValue())}
			rc.MeanMillis = latency[rc.Endpoint+"\x00"+rc.Reason]
			if rc.Reason == "" {
				rc.Reason = "Success"
			}
			v.Requests, v.RequestsTotal = append(v.Requests, rc), v.RequestsTotal+rc.Count
		}
	}
	sort.Slice(v.Requests, func(i, j int) bool {
		a, b := v.Requests[i], v.Requests[j]
		return strings.Compare(a.Endpoint+"\x00"+a.Reason, b.Endpoint+"\x00"+b.Reason) < 0
	})
	return v
}

func (c *Console) numbers(w http.ResponseWriter, r *http.Request, v *view) {
	if c.cfg.Metrics == nil {
		http.Error(w, "no metrics", http.StatusNotFound)
		return
	}
	families, err := c.cfg.Metrics.Gather()
	if err != nil {
		c.fail(w, "gather the metrics", err)
		return
	}
	v.Title, v.Nav, v.Data = "Live numbers", "numbers", readNumbers(families)
	c.render(w, http.StatusOK, "numbers", v)
}
