package schedule

import (
	"fmt"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Status is what is known of one schedule: its spec in short, its last
// run (by any instance) and its next slot.
type Status struct {
	Name     string `json:"name"`
	Enabled  bool   `json:"enabled"`
	Cron     string `json:"cron,omitempty"`
	Timezone string `json:"timezone,omitempty"`
	Action   string `json:"action,omitempty"`
	Missed   string `json:"missed,omitempty"`
	// LastRun is nil until a slot has run.
	LastRun *Run `json:"last_run,omitempty"`
	// NextRun is nil when the schedule is disabled or will not fire.
	NextRun *time.Time `json:"next_run,omitempty"`
	// Error is set when the stored spec does not compile here.
	Error string `json:"error,omitempty"`
}

// Status returns what is known of the named schedule; false when no
// Schedule of that name is stored.
func (s *Service) Status(name string) (Status, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[name]
	if !ok {
		return Status{}, false
	}
	return s.status(e), true
}

// ObjectStatus gives the Status of a Schedule, for the API's object reads
// (controller.ObjectStatus); false for other kinds.
func (s *Service) ObjectStatus(kind, name string) (any, bool) {
	if kind != KindSchedule {
		return nil, false
	}
	st, ok := s.Status(name)
	if !ok {
		return nil, false
	}
	return st, true
}

// List returns the status of every schedule, sorted by name.
func (s *Service) List() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, 0, len(s.entries))
	for _, e := range s.entries {
		out = append(out, s.status(e))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (s *Service) status(e *entry) Status {
	st := Status{Name: e.name, Error: e.err}
	if r := s.state[e.name]; r != nil && r.LastRun != nil {
		cp := *r.LastRun
		st.LastRun = &cp
	}
	if e.sched == nil {
		return st
	}
	sp := e.sched.Spec
	st.Enabled, st.Cron, st.Timezone, st.Action, st.Missed = e.sched.Enabled(), sp.Cron, sp.Timezone, e.sched.Action(), sp.Missed
	if !e.next.IsZero() {
		n := e.next
		st.NextRun = &n
	}
	return st
}

// metrics are the scheduler's Prometheus metrics.
type metrics struct {
	slots *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		slots: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_schedule_slots_total",
			Help: "Schedule slots this instance met, by result: succeeded or failed (it fired them), taken (another instance did) or error (the claim failed).",
		}, []string{"result"}),
	}
	if reg != nil {
		if err := reg.Register(m.slots); err != nil {
			return nil, fmt.Errorf("schedule metrics: %w", err)
		}
	}
	return m, nil
}
