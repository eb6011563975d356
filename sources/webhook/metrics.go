package webhook

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/promreg"
)

// Results of a request, the result label of vigil_webhook_requests_total.
const (
	resultAccepted     = "accepted"
	resultDuplicate    = "duplicate"
	resultBadRequest   = "bad_request"
	resultUnauthorized = "unauthorized"
	resultForbidden    = "forbidden"
	resultNotFound     = "not_found"
	resultTooLarge     = "too_large"
	resultRateLimited  = "rate_limited"
	resultUnavailable  = "unavailable"
	resultOther        = "other"
)

// metrics are labelled by receiver name, and only for receivers that
// exist ("" for unknown names), so their cardinality is bounded by the
// configuration.
type metrics struct {
	requests  *prometheus.CounterVec
	published *prometheus.CounterVec
	duration  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_webhook_requests_total",
			Help: "Webhook requests by receiver (empty for unknown names) and result.",
		}, []string{"receiver", "result"}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_webhook_events_published_total",
			Help: "Events stored from webhook deliveries, by receiver.",
		}, []string{"receiver"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vigil_webhook_request_duration_seconds",
			Help:    "Webhook request latency by receiver, publish acknowledgement included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"receiver"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.requests, err = promreg.Register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.published, err = promreg.Register(reg, m.published); err != nil {
		return nil, err
	}
	if m.duration, err = promreg.Register(reg, m.duration); err != nil {
		return nil, err
	}
	return m, nil
}

func resultOf(status int) string {
	switch {
	case status == 202:
		return resultAccepted
	case status == 200:
		return resultDuplicate
	case status == 401:
		return resultUnauthorized
	case status == 403:
		return resultForbidden
	case status == 404:
		return resultNotFound
	case status == 413:
		return resultTooLarge
	case status == 429:
		return resultRateLimited
	case status == 503:
		return resultUnavailable
	case status >= 400 && status < 500:
		return resultBadRequest
	}
	return resultOther
}
