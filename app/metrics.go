package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/actions"
	"github.com/vigilhq/vigil/events"
)

// maxEventIDLabels bounds the event_id label: ids seen after that many
// distinct ones are counted as "other".
const maxEventIDLabels = 500

// metrics counts stored events by id and reports JetStream's health.
type metrics struct {
	events *prometheus.CounterVec
	sub    *nats.Subscription
	seen   map[string]bool // touched only by the subscription's goroutine
}

func newMetrics(reg prometheus.Registerer, bus *events.Bus) (*metrics, error) {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_events_total",
			Help: "Events stored in the events stream since this process started, by event id (\"other\" past 500 ids).",
		}, []string{"event_id"}),
		seen: map[string]bool{},
	}
	if err := reg.Register(m.events); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if err := reg.Register(&jetStreamCollector{bus: bus}); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return m, nil
}

// start counts events as the stream publishes them.
func (m *metrics) start(bus *events.Bus) error {
	sub, err := bus.Conn().Subscribe(events.EventsPrefix+".>", func(msg *nats.Msg) {
		rest := strings.TrimPrefix(msg.Subject, events.EventsPrefix+".")
		id, _, _ := strings.Cut(rest, ".")
		if !m.seen[id] {
			if len(m.seen) >= maxEventIDLabels {
				id = "other"
			} else {
				m.seen[id] = true
			}
		}
		m.events.WithLabelValues(id).Inc()
	})
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	_ = sub.SetPendingLimits(1<<16, 64<<20)
	m.sub = sub
	return nil
}

func (m *metrics) stop() {
	if m.sub != nil {
		_ = m.sub.Unsubscribe()
	}
}

var (
	jsUpDesc = prometheus.NewDesc("vigil_jetstream_up", "1 when JetStream answers.", nil, nil)
	msgsDesc = prometheus.NewDesc("vigil_stream_messages", "Messages in a vigil stream.", []string{"stream"}, nil)
	byteDesc = prometheus.NewDesc("vigil_stream_bytes", "Bytes in a vigil stream.", []string{"stream"}, nil)
)

// jetStreamCollector reads stream state at scrape time.
type jetStreamCollector struct{ bus *events.Bus }

func (c *jetStreamCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- jsUpDesc
	ch <- msgsDesc
	ch <- byteDesc
}

func (c *jetStreamCollector) Collect(ch chan<- prometheus.Metric) {
	up := 1.0
	if c.bus.Ready() != nil {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(jsUpDesc, prometheus.GaugeValue, up)
	if up == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, name := range []string{
		events.EventsStream, events.IngestStream, events.RejectedStream, "KV_vigil_config",
		actions.ActionsStream, actions.DeadLetterStream, "KV_" + actions.StateBucket,
	} {
		s, err := c.bus.JetStream().Stream(ctx, name)
		if err != nil {
			continue
		}
		st := s.CachedInfo().State
		ch <- prometheus.MustNewConstMetric(msgsDesc, prometheus.GaugeValue, float64(st.Msgs), name)
		ch <- prometheus.MustNewConstMetric(byteDesc, prometheus.GaugeValue, float64(st.Bytes), name)
	}
}
