package actions

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// serviceMetrics are the pipeline's Prometheus metrics.
type serviceMetrics struct {
	decisions  *prometheus.CounterVec
	ruleErrors *prometheus.CounterVec
	latency    prometheus.Histogram
	deliveries *prometheus.CounterVec
}

func newServiceMetrics(reg prometheus.Registerer) (*serviceMetrics, error) {
	m := &serviceMetrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_rules_decisions_total",
			Help: "Events an AlertConfig matched, by what they did: raise, act, throttle, resolve, collect, silenced, duplicate or late.",
		}, []string{"outcome"}),
		ruleErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_rules_condition_errors_total",
			Help: "Events on which an AlertConfig's condition or group key failed (e.g. a missing details key), by config.",
		}, []string{"config"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vigil_rules_decision_seconds",
			Help:    "Time from the engine receiving a matched event to its decision saved.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_actions_total",
			Help: "Tries of alert actions, by kind and result: delivered, failed (a ControlScript that ran and failed), retrying or dead (moved to the dead-letter stream).",
		}, []string{"kind", "result"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.decisions, m.ruleErrors, m.latency, m.deliveries} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("rules metrics: %w", err)
		}
	}
	return m, nil
}

// outcomeLabel names what a decision did, for the decisions counter.
func outcomeLabel(d *Decision) string {
	switch {
	case d.Dropped != "":
		return d.Dropped
	case d.Silenced != "":
		return "silenced"
	case d.Resolved:
		return "resolve"
	case d.Throttled:
		return "throttle"
	case d.Act:
		return "act"
	default:
		return "collect"
	}
}
