package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigilhq/vigil/events"
	"github.com/vigilhq/vigil/runner"
)

// AlertFilter selects alerts in a list.
type AlertFilter struct {
	// Config and State select one AlertConfig and one state when set.
	Config, State string
	Limit         int
}

// Alerts returns the alerts matching f, newest first.
func (s *Service) Alerts(_ context.Context, f AlertFilter) ([]Alert, error) {
	out, err := s.engine.Alerts(f.Config, func(a *Alert) bool { return f.State == "" || a.State == f.State })
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Raised.Equal(out[j].Raised) {
			return out[i].Raised.After(out[j].Raised)
		}
		return out[i].ID > out[j].ID
	})
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// Alert returns an alert by id; the error wraps ErrNoAlert when there is
// none.
func (s *Service) Alert(ctx context.Context, id string) (*Alert, error) {
	var found *Alert
	var err error
	if config, key, ok := s.store.LookupIndex(id); ok {
		if st, _, err := s.store.Load(config, key); err == nil && st != nil && st.Alert != nil && st.Alert.ID == id {
			found = copyAlert(st.Alert)
		}
	}
	if found == nil {
		err = s.store.Range("", func(_, _ string, st *GroupState) bool {
			if st.Alert != nil && st.Alert.ID == id {
				found = copyAlert(st.Alert)
				return false
			}
			return true
		})
	}
	if err != nil {
		return nil, err
	}
	if found == nil {
		return nil, fmt.Errorf("%s: %w", id, ErrNoAlert)
	}
	if found.Actions, err = s.store.Outcomes(id); err != nil {
		return nil, err
	}
	// A ControlScript action whose outcome was not recorded yet (still
	// running, or its process died) shows its execution's status.
	for i, o := range found.Actions {
		if o.Kind != ActionControlScript || o.Status != OutcomeQueued || o.Execution == "" || s.opts.Scripts == nil {
			continue
		}
		ex, err := s.opts.Scripts.Get(ctx, o.Execution)
		if err != nil {
			continue
		}
		switch {
		case ex.Status == runner.StatusSucceeded:
			o.Status, o.Output = OutcomeDelivered, ex.Stdout+ex.Stderr
		case runner.Final(ex.Status):
			o.Status, o.Error = OutcomeFailed, ex.Status
			o.Output, _ = runOutcome(ex)
		case ex.Status == runner.StatusRunning:
			o.Status = OutcomeRunning
		}
		found.Actions[i] = o
	}
	var last time.Time
	for _, o := range found.Actions {
		if o.Kind == ActionControlScript && o.Execution != "" && !o.At.Before(last) {
			found.ActionScriptOutput, last = o.Output, o.At
		}
	}
	return found, nil
}

// Dismiss dismisses an alert: its actions stop, and the next match raises
// a new one.
func (s *Service) Dismiss(ctx context.Context, id string) (*Alert, error) {
	a, err := s.Alert(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.engine.Dismiss(a.Config, a.Key, id)
}

// TestResult is what one AlertConfig would do with an event.
type TestResult struct {
	Config string `json:"config"`
	// Matched: the event raises or resolves the config's alert; Reason
	// says why not otherwise.
	Matched bool   `json:"matched"`
	Reason  string `json:"reason,omitempty"`
	Key     string `json:"key,omitempty"`
	// Outcome is what the event would do: raise, act (a repeat after the
	// throttle), throttle, resolve, silenced by NAME, collect (once_after
	// or a window below its threshold), or dropped (duplicate, late).
	Outcome string `json:"outcome,omitempty"`
	// Alert is the alert as it would be after the event.
	Alert *Alert `json:"alert,omitempty"`
	// Actions are the actions that would run.
	Actions []ActionOutcome `json:"actions,omitempty"`
}

// Test tells what each AlertConfig would do with ev, from the current
// state, without doing it: nothing is written and no action runs.
func (s *Service) Test(_ context.Context, ev *events.Event) ([]TestResult, error) {
	var out []TestResult
	for _, r := range s.engine.Rules() {
		name := r.Name
		res := TestResult{Config: name}
		if r.Spec.Enabled != nil && !*r.Spec.Enabled {
			res.Reason = "disabled"
			out = append(out, res)
			continue
		}
		m, err := r.Match(ev)
		switch {
		case err != nil:
			res.Reason = err.Error()
		case !m.Raise && !m.Resolve:
			res.Reason = r.Explain(ev)
		}
		if !m.Raise && !m.Resolve {
			if res.Reason != "" {
				out = append(out, res)
			}
			continue
		}
		res.Matched, res.Key = true, m.Key
		// Run the event on a copy of the group's state.
		st, _, err := s.store.Load(name, m.Key)
		if err != nil {
			return nil, err
		}
		scratch := NewMemoryStore()
		if st != nil {
			_ = scratch.Save(name, m.Key, st, 0)
		}
		e := &Engine{Now: s.opts.Now, Store: scratch, Lateness: s.engine.Lateness, NewID: func() string { return "alert-(new)" }, Plan: s.plan}
		e.SetRules([]*Rule{r})
		s.engine.mu.Lock()
		e.silences = s.engine.silences
		s.engine.mu.Unlock()
		d, err := e.Apply(r, m, ev)
		if err != nil {
			return nil, err
		}
		res.Alert, res.Outcome = d.Alert, outcomeOf(d, st)
		res.Actions = d.Planned
		out = append(out, res)
	}
	return out, nil
}

func outcomeOf(d *Decision, before *GroupState) string {
	switch {
	case d.Dropped != "":
		return "dropped (" + d.Dropped + ")"
	case d.Silenced != "":
		return "silenced by " + d.Silenced
	case d.Resolved:
		return "resolve"
	case d.Throttled:
		return "throttle"
	case d.Act && (before == nil || before.Alert == nil || before.Alert.State == StateResolved || before.Alert.State == StateDismissed):
		return "raise"
	case d.Act:
		return "act"
	default:
		return "collect"
	}
}

// DeadLetters returns up to limit dead letters from seq from on, oldest
// first, and the sequence to continue from (0: none left).
func (s *Service) DeadLetters(ctx context.Context, from uint64, limit int) ([]DeadLetter, uint64, error) {
	info, err := s.dead.Info(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("dead letters: %w", err)
	}
	if limit <= 0 {
		limit = 100
	}
	from = max(from, info.State.FirstSeq)
	var out []DeadLetter
	for seq := from; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		if len(out) == limit {
			return out, seq, nil
		}
		dl, err := s.deadLetter(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		out = append(out, *dl)
	}
	return out, 0, nil
}

// ErrNoDeadLetter is wrapped when a dead letter is not found.
var ErrNoDeadLetter = errors.New("no such dead letter")

func (s *Service) deadLetter(ctx context.Context, seq uint64) (*DeadLetter, error) {
	m, err := s.dead.GetMsg(ctx, seq)
	if err != nil {
		return nil, err
	}
	var dl DeadLetter
	if err := json.Unmarshal(m.Data, &dl); err != nil {
		return nil, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	dl.Seq = seq
	return &dl, nil
}

// Replay queues a dead letter's request again, with the same key and tries
// starting over, and removes it from the dead-letter stream.
func (s *Service) Replay(ctx context.Context, seq uint64) (*DeadLetter, error) {
	dl, err := s.deadLetter(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("%d: %w", seq, ErrNoDeadLetter)
	}
	if err != nil {
		return nil, err
	}
	q := dl.Request
	q.Replays++
	b, err := json.Marshal(&q)
	if err != nil {
		return nil, err
	}
	// The stream drops a repeated message id: a replay has its own.
	if _, err := s.opts.JS.Publish(ctx, ActionsPrefix+"."+q.Kind, b, jetstream.WithMsgID(fmt.Sprintf("%s.replay.%d", q.Key, seq))); err != nil {
		return nil, fmt.Errorf("replay %d: %w", seq, err)
	}
	if err := s.dead.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("replay %d: remove the dead letter: %w", seq, err)
	}
	s.record(&q, ActionOutcome{Key: q.Key, Kind: q.Kind, Target: q.Target(), Resolve: q.Resolve, Status: OutcomeQueued, At: s.opts.Now().UTC()})
	return dl, nil
}
