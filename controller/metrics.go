package controller

import (
	"strconv"
	"time"

	"github.com/vigilhq/vigil/promreg"

	"github.com/prometheus/client_golang/prometheus"
)

// apiMetrics are labelled by route pattern, never by raw path, so their
// cardinality is bounded by the route table.
type apiMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newAPIMetrics(reg prometheus.Registerer) (*apiMetrics, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_api_requests_total",
		Help: "API requests by route pattern (\"unmatched\" when none) and status code.",
	}, []string{"route", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "vigil_api_request_duration_seconds",
		Help:    "API request latency by route pattern; event streams count their whole life.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	}, []string{"route"})
	var err error
	if requests, err = promreg.Register(reg, requests); err != nil {
		return nil, err
	}
	if duration, err = promreg.Register(reg, duration); err != nil {
		return nil, err
	}
	return &apiMetrics{requests: requests, duration: duration}, nil
}

func (m *apiMetrics) observe(route string, status int, elapsed time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(elapsed.Seconds())
}
