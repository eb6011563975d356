package health

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/promreg"
)

// metrics are the Checker's Prometheus metrics.
type metrics struct {
	checks   *prometheus.CounterVec
	serverUp *prometheus.GaugeVec
}

// ResultSuccess is the result label of a check that passed; a failed
// check is labelled with its failure code.
const ResultSuccess = "success"

// newMetrics makes the metrics and registers them with reg, when not nil.
// A Checker on a registry that already has them shares them.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_health_checks_total",
			Help: "Health checks of pool servers, by pool and result: success or the failure code (CONNECTION_REFUSED, RESPONSE_CODE_MISMATCH, ...).",
		}, []string{"pool", "result"}),
		serverUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vigil_server_up",
			Help: "Whether an enabled pool server is up (1) or down (0) by its health monitors; server is ip:port.",
		}, []string{"pool", "server"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.checks, err = promreg.Register(reg, m.checks); err != nil {
		return m, fmt.Errorf("health metrics: %w", err)
	}
	if m.serverUp, err = promreg.Register(reg, m.serverUp); err != nil {
		return m, fmt.Errorf("health metrics: %w", err)
	}
	return m, nil
}

func (m *metrics) check(pool, code string) {
	if code == "" {
		code = ResultSuccess
	}
	m.checks.WithLabelValues(pool, code).Inc()
}

func (m *metrics) setUp(pool, server string, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.serverUp.WithLabelValues(pool, server).Set(v)
}

func (m *metrics) forget(pool, server string) {
	m.serverUp.DeleteLabelValues(pool, server)
}

// forgetPool drops every series of pool.
func (m *metrics) forgetPool(pool string) {
	m.serverUp.DeletePartialMatch(prometheus.Labels{"pool": pool})
	m.checks.DeletePartialMatch(prometheus.Labels{"pool": pool})
}
