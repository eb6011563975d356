package actions

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/vigilhq/vigil/events"
)

// Alert states.
const (
	StateOn        = "ON"
	StateThrottled = "THROTTLED"
	StateResolved  = "RESOLVED"
	StateDismissed = "DISMISSED"
)

// Bounds of the engine's state.
const (
	// MaxAlertEvents is how many of its events an alert keeps (the newest).
	MaxAlertEvents = 20
	// seenIDs is how many event ids per group are remembered to drop
	// repeated deliveries.
	seenIDs = 64
	// DefaultLateness bounds how far behind a group's newest event an event
	// may be and still count; older ones are dropped as late.
	DefaultLateness = 60 * time.Second
)

// Alert is the alert of one (AlertConfig, group key).
type Alert struct {
	ID      string `json:"id"`
	Config  string `json:"config"`
	Key     string `json:"key"`
	State   string `json:"state"`
	Level   string `json:"level"`
	ObjType string `json:"obj_type"`
	ObjName string `json:"obj_name"`
	ObjUUID string `json:"obj_uuid,omitempty"`
	// Raised is when the alert was raised, Acted when its actions last ran.
	Raised time.Time `json:"raised"`
	Acted  time.Time `json:"acted"`
	// ThrottleCount counts the matches since the actions last ran.
	ThrottleCount int `json:"throttle_count"`
	// Events are the events that caused it, the newest MaxAlertEvents.
	Events []events.Record `json:"events"`
	// Summary is the config's summary template rendered on the alert.
	Summary string `json:"summary"`
	// Actions are the outcomes of its actions (kept apart from the alert's
	// state, and filled in when one alert is read).
	Actions []ActionOutcome `json:"actions,omitempty"`
	// ActionScriptOutput is the output of its ControlScript's last run, as
	// Avi records it on the alert.
	ActionScriptOutput string `json:"action_script_output,omitempty"`
}

// ActionOutcome is where one action of an alert stands.
type ActionOutcome struct {
	// Key is the action's idempotency key; Kind and Target say which
	// action (webhook 0, syslog 1, ...).
	Key    string `json:"key"`
	Kind   string `json:"kind"`
	Target string `json:"target"`
	// Resolve is set for an action run on the alert's resolve.
	Resolve bool `json:"resolve,omitempty"`
	// Status is queued, running (a ControlScript's run), delivered,
	// retrying, dead (in the dead-letter stream) or failed (a ControlScript
	// that ran and failed).
	Status string    `json:"status"`
	Tries  int       `json:"tries"`
	Error  string    `json:"error,omitempty"`
	At     time.Time `json:"at"`
	// Execution is the ControlScript's execution id, Output its output.
	Execution string `json:"execution,omitempty"`
	Output    string `json:"output,omitempty"`
}

// Outcome statuses.
const (
	OutcomeQueued    = "queued"
	OutcomeRunning   = "running" // a ControlScript action's run
	OutcomeDelivered = "delivered"
	OutcomeRetrying  = "retrying"
	OutcomeDead      = "dead"
	OutcomeFailed    = "failed"
)

// Outbound is an action request written with the state that caused it, in
// the state's outbox: one conditional write holds both, and the pipeline
// moves the requests to the actions stream from there.
type Outbound struct {
	// Key is the request's idempotency key.
	Key  string          `json:"key"`
	Data json.RawMessage `json:"data"`
	// At is when the decision was made.
	At time.Time `json:"at"`
}

// GroupState is the engine's state of one (AlertConfig, group key).
type GroupState struct {
	// Hits are the times of the matches inside the rolling window.
	Hits []time.Time `json:"hits,omitempty"`
	// Recent are the events of Hits, in the same order: a new alert
	// carries the events that made its threshold.
	Recent []events.Record `json:"recent,omitempty"`
	// Seen are the ids of recent events, to drop repeated deliveries.
	Seen []string `json:"seen,omitempty"`
	// Newest is the time of the newest event counted.
	Newest time.Time `json:"newest"`
	Alert  *Alert    `json:"alert,omitempty"`
	// Mode state, by the engine's clock: once_within's quiet period ends
	// at Quiet, once_after acts at Due, accumulate_within counts Count
	// matches since Since.
	Quiet time.Time `json:"quiet,omitzero"`
	Due   time.Time `json:"due,omitzero"`
	Since time.Time `json:"since,omitzero"`
	Count int       `json:"count,omitempty"`
	// Outbox holds the action requests of decisions until they are on
	// the actions stream.
	Outbox []Outbound `json:"outbox,omitempty"`
}

// StateStore keeps the group states, with revisions: engines that share
// the work see each other's writes as conflicts and redo the event.
// Implementations: MemoryStore and KVStore (JetStream).
type StateStore interface {
	// Load returns the state and its revision; nil and 0 when there is none.
	Load(config, key string) (*GroupState, uint64, error)
	// Save writes the state if its revision is still rev (0: if there is
	// none), else returns an error wrapping ErrConflict and writes nothing.
	Save(config, key string, s *GroupState, rev uint64) error
	Delete(config, key string) error
	// Range calls f for every state of config ("": of every config) until
	// f returns false.
	Range(config string, f func(config, key string, s *GroupState) bool) error
}

// MaxOutbox and MaxOutboxBytes bound the action requests that wait in one
// group's outbox for the actions stream to take them: the state and its
// outbox are one write, which NATS caps at 1 MiB by default.
var (
	MaxOutbox      = 1000
	MaxOutboxBytes = 256 << 10
)

// ErrOutboxFull is wrapped by a decision that would put more than
// MaxOutbox requests in its group's outbox; the event is decided again
// later.
var ErrOutboxFull = errors.New("outbox full")

// ErrConflict is wrapped by a Save that lost a race.
var ErrConflict = errors.New("state changed meanwhile")

// maxConflicts bounds the retries of one event on one group.
const maxConflicts = 20

// Decision is what one event meant for one AlertConfig.
type Decision struct {
	Config, Key string
	// Alert is a copy of the alert after the event; nil when none.
	Alert *Alert
	// Act: run the ActionGroup now (a new alert, or a repeat after the
	// throttle interval). Resolved: the alert was resolved by this event.
	Act, Resolved bool
	// Throttled: the match only counted (ThrottleCount).
	Throttled bool
	// Silenced names the Silence that held back the actions Act would
	// have run (Act is then false); the alert is recorded all the same.
	Silenced string
	// Dropped says why the event was ignored: "duplicate" or "late".
	Dropped string
	// Raised is set when the decision raised a new alert.
	Raised bool
	// Cause is what made the decision: the event's id, or "due@<time>"
	// for a once_after group whose time came. Action keys derive from it.
	Cause string
	// Hops counts the publish_event actions that led to the event: 0 for
	// an event from anywhere else.
	Hops int
	// Out are the action requests saved with the state, Planned their
	// outcomes as queued.
	Out     []Outbound
	Planned []ActionOutcome
}

// Engine is the rules engine's pure core: it turns events into decisions,
// with its state in a StateStore, its time from Now and no I/O of its own.
type Engine struct {
	Now      func() time.Time
	Store    StateStore
	Lateness time.Duration // default DefaultLateness
	NewID    func() string
	// Plan turns a decision that acts (or resolves) into the action
	// requests saved with the state, and their outcomes as queued; nil
	// plans none.
	Plan func(r *Rule, d *Decision) ([]Outbound, []ActionOutcome, error)

	mu       sync.Mutex
	rules    []*Rule
	byEvent  map[string][]*Rule
	byName   map[string]*Rule
	silences []*Silence
	// silenceLabels is set when a silence reads labels.
	silenceLabels bool
}

// SetSilences replaces the silences.
func (e *Engine) SetSilences(silences []*Silence) {
	silences = slices.Clone(silences)
	labels := slices.ContainsFunc(silences, (*Silence).UsesLabels)
	e.mu.Lock()
	e.silences, e.silenceLabels = silences, labels
	e.mu.Unlock()
}

// SilencesUseLabels reports whether a silence reads the events' labels.
func (e *Engine) SilencesUseLabels() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.silenceLabels
}

// silence names an active silence that covers an alert of config raised
// by ev, or "".
func (e *Engine) silence(config string, ev *events.Event, now time.Time) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.silences {
		if s.Active(now) && s.Matches(config, ev) {
			return s.Name
		}
	}
	return ""
}

// SetRules replaces the compiled AlertConfigs, ordered by name.
func (e *Engine) SetRules(rules []*Rule) {
	rules = slices.Clone(rules)
	sort.Slice(rules, func(i, j int) bool { return rules[i].Name < rules[j].Name })
	byEvent, byName := map[string][]*Rule{}, map[string]*Rule{}
	for _, r := range rules {
		byName[r.Name] = r
		if r.Spec.Enabled != nil && !*r.Spec.Enabled {
			continue
		}
		for id := range r.raise {
			byEvent[id] = append(byEvent[id], r)
		}
		for id := range r.resolve {
			if !r.raise[id] {
				byEvent[id] = append(byEvent[id], r)
			}
		}
	}
	for _, l := range byEvent {
		sort.Slice(l, func(i, j int) bool { return l[i].Name < l[j].Name })
	}
	e.mu.Lock()
	e.rules, e.byEvent, e.byName = rules, byEvent, byName
	e.mu.Unlock()
}

// RulesFor returns the enabled rules that an event id raises or resolves,
// ordered by name.
func (e *Engine) RulesFor(eventID string) []*Rule {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.byEvent[eventID]
}

// Rules returns every rule, enabled or not, ordered by name.
func (e *Engine) Rules() []*Rule {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rules
}

// Rule returns the rule of an AlertConfig, or nil.
func (e *Engine) Rule(name string) *Rule {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.byName[name]
}

// Handle runs ev through every enabled rule. An error of one rule (a
// condition that fails on this event) is returned beside the other rules'
// decisions.
func (e *Engine) Handle(ev *events.Event) ([]Decision, []error) {
	var out []Decision
	var errs []error
	for _, r := range e.RulesFor(ev.Data.EventID) {
		m, err := r.Match(ev)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !m.Raise && !m.Resolve {
			continue
		}
		d, err := e.Apply(r, m, ev)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if d != nil {
			out = append(out, *d)
		}
	}
	return out, errs
}

// Apply runs one event through one rule and the group it matched, again
// from a fresh load when another engine wrote the group meanwhile.
func (e *Engine) Apply(r *Rule, m Match, ev *events.Event) (*Decision, error) {
	for range maxConflicts {
		d, err := e.applyOnce(r, m, ev)
		if !errors.Is(err, ErrConflict) {
			return d, err
		}
	}
	return nil, fmt.Errorf("%s: group %s: %d conflicting writes in a row: %w", r.Name, m.Key, maxConflicts, ErrConflict)
}

// optimisticLoader is a StateStore that may answer "none" for a key it has
// not seen, leaving the revision check of Save to correct it.
type optimisticLoader interface {
	LoadOptimistic(config, key string) (*GroupState, uint64, error)
}

func (e *Engine) applyOnce(r *Rule, m Match, ev *events.Event) (*Decision, error) {
	load := e.Store.Load
	if o, ok := e.Store.(optimisticLoader); ok {
		load = o.LoadOptimistic
	}
	st, rev, err := load(r.Name, m.Key)
	if err != nil {
		return nil, fmt.Errorf("%s: load state: %w", r.Name, err)
	}
	if st == nil {
		st = &GroupState{}
	}
	d := &Decision{Config: r.Name, Key: m.Key, Cause: ev.ID, Hops: Hops(ev)}
	if slices.Contains(st.Seen, ev.ID) {
		d.Dropped = "duplicate"
		d.Alert = copyAlert(st.Alert)
		return d, nil
	}
	lateness := e.Lateness
	if lateness == 0 {
		lateness = DefaultLateness
	}
	if !st.Newest.IsZero() && ev.Time.Before(st.Newest.Add(-lateness)) {
		d.Dropped = "late"
		d.Alert = copyAlert(st.Alert)
		return d, nil
	}
	ev = boundDetails(ev)
	st.Seen = append(st.Seen, ev.ID)
	if len(st.Seen) > seenIDs {
		st.Seen = st.Seen[len(st.Seen)-seenIDs:]
	}
	if ev.Time.After(st.Newest) {
		st.Newest = ev.Time
	}
	now := e.Now()
	switch {
	case m.Resolve:
		st.Hits, st.Recent = nil, nil
		if a := st.Alert; a != nil && (a.State == StateOn || a.State == StateThrottled) {
			a.State = StateResolved
			a.Events = appendEvent(a.Events, ev.Data)
			d.Resolved = true
		}
	case r.Spec.Mode != nil:
		e.mode(r, st, ev, now, d)
	case r.Spec.Category == CategoryRollingWindow:
		window, threshold := r.Spec.Window.D(), r.Spec.Threshold
		if window == 0 {
			window = DefaultWindow
		}
		if threshold == 0 {
			threshold = DefaultThreshold
		}
		// Recent holds the events of the newest Hits, at most
		// MaxAlertEvents: those a new alert carries.
		if len(st.Recent) > len(st.Hits) {
			st.Recent = st.Recent[len(st.Recent)-len(st.Hits):]
		}
		offset := len(st.Hits) - len(st.Recent) // hits without their event
		i := sort.Search(len(st.Hits), func(i int) bool { return st.Hits[i].After(ev.Time) })
		st.Hits = slices.Insert(st.Hits, i, ev.Time)
		if i >= offset {
			st.Recent = slices.Insert(st.Recent, i-offset, ev.Data)
		} else {
			offset++
		}
		if n := len(st.Recent) - MaxAlertEvents; n > 0 {
			st.Recent, offset = st.Recent[n:], offset+n
		}
		// The window ends at the newest event: a late event inside the
		// lateness bound counts where it belongs.
		from := st.Newest.Add(-window)
		first := sort.Search(len(st.Hits), func(i int) bool { return st.Hits[i].After(from) })
		first = max(first, len(st.Hits)-threshold)
		st.Hits = st.Hits[first:]
		if drop := first - offset; drop > 0 {
			st.Recent = st.Recent[min(drop, len(st.Recent)):]
		}
		if len(st.Hits) >= threshold {
			e.fire(r, st, ev, now, d, st.Recent)
		} else if st.Alert != nil && (st.Alert.State == StateOn || st.Alert.State == StateThrottled) {
			st.Alert.Events = appendEvent(st.Alert.Events, ev.Data)
		}
	default:
		e.fire(r, st, ev, now, d, nil)
	}
	if st.Alert != nil {
		st.Alert.Summary = r.Summarize(st.Alert)
	}
	if d.Act || d.Resolved {
		// The alert is recorded either way; a silence holds back the
		// actions (on resolve too). Actions held back do not start the
		// throttle: the first match after the silence acts.
		if name := e.silence(r.Name, ev, now); name != "" {
			if d.Act && st.Alert != nil {
				st.Alert.Acted = time.Time{}
			}
			d.Act, d.Silenced = false, name
		}
	}
	d.Alert = copyAlert(st.Alert)
	if err := e.plan(r, d, st); err != nil {
		return nil, err
	}
	if err := e.Store.Save(r.Name, m.Key, st, rev); err != nil {
		return nil, fmt.Errorf("%s: save state: %w", r.Name, err)
	}
	return d, nil
}

// plan asks Plan for the action requests of a decision that acts or
// resolves, and puts them in the state's outbox.
func (e *Engine) plan(r *Rule, d *Decision, st *GroupState) error {
	if e.Plan == nil || (!d.Act && !d.Resolved) || d.Alert == nil || d.Silenced != "" {
		return nil
	}
	out, outcomes, err := e.Plan(r, d)
	if err != nil {
		return fmt.Errorf("%s: plan actions: %w", r.Name, err)
	}
	size := 0
	for _, o := range st.Outbox {
		size += len(o.Data)
	}
	for _, o := range out {
		size += len(o.Data)
	}
	// A decision is always taken into an empty outbox, so that a group
	// whose one decision is large still makes progress.
	if n := len(st.Outbox) + len(out); len(st.Outbox) > 0 && (n > MaxOutbox || size > MaxOutboxBytes) {
		// The actions stream is not taking requests: hold the event back
		// (it comes again) rather than grow the state past what one write
		// can hold.
		return fmt.Errorf("%s: group %s: %d actions (%d bytes) would wait to be queued, at most %d (%d bytes): %w",
			r.Name, d.Key, n, size, MaxOutbox, MaxOutboxBytes, ErrOutboxFull)
	}
	now := e.Now()
	for i := range out {
		out[i].At = now
	}
	st.Outbox = append(st.Outbox, out...)
	d.Out, d.Planned = out, outcomes
	return nil
}

// mode applies an Event-Driven Ansible throttle mode to a match, by the
// engine's clock; the modes replace Throttle.
func (e *Engine) mode(r *Rule, st *GroupState, ev *events.Event, now time.Time, d *Decision) {
	m := r.Spec.Mode
	switch {
	case m.OnceWithin != 0:
		if now.Before(st.Quiet) {
			e.count(st, ev, d)
			return
		}
		st.Quiet = now.Add(m.OnceWithin.D())
		e.raise(r, st, ev, now, d, true)
	case m.OnceAfter != 0:
		// Collect; Due acts once the time is up.
		if st.Due.IsZero() {
			st.Due = now.Add(m.OnceAfter.D())
			e.raise(r, st, ev, now, d, false)
			return
		}
		st.Alert.Events = appendEvent(st.Alert.Events, ev.Data)
	default: // accumulate_within
		if st.Since.IsZero() || !now.Before(st.Since.Add(m.AccumulateWithin.D())) {
			st.Since, st.Count = now, 0
		}
		st.Count++
		threshold := max(r.Spec.Threshold, 1)
		if st.Count < threshold {
			return
		}
		st.Since, st.Count = time.Time{}, 0
		e.raise(r, st, ev, now, d, true)
	}
}

// raise raises the group's alert, or adds the event to the one that is on;
// act says whether its actions run now.
func (e *Engine) raise(r *Rule, st *GroupState, ev *events.Event, now time.Time, d *Decision, act bool) {
	if a := st.Alert; a != nil && (a.State == StateOn || a.State == StateThrottled) {
		a.Events = appendEvent(a.Events, ev.Data)
		if act {
			a.State, a.Acted = StateOn, now
		}
		d.Act = act
		return
	}
	e.fire(r, st, ev, now, d, nil)
	d.Act = act
	if !act {
		st.Alert.Acted = time.Time{}
	}
}

// count counts a suppressed match on the group's alert.
func (e *Engine) count(st *GroupState, ev *events.Event, d *Decision) {
	if a := st.Alert; a != nil {
		a.Events = appendEvent(a.Events, ev.Data)
		a.ThrottleCount++
		a.State = StateThrottled
	}
	d.Throttled = true
}

// Due acts on the once_after groups whose time is up: one decision each,
// with every event collected meanwhile.
func (e *Engine) Due() ([]Decision, error) {
	now := e.Now()
	type due struct{ config, key string }
	var list []due
	for _, r := range e.Rules() {
		if r.Spec.Mode == nil || r.Spec.Mode.OnceAfter == 0 {
			continue
		}
		if err := e.Store.Range(r.Name, func(config, key string, s *GroupState) bool {
			if !s.Due.IsZero() && !now.Before(s.Due) {
				list = append(list, due{config, key})
			}
			return true
		}); err != nil {
			return nil, err
		}
	}
	var out []Decision
	for _, g := range list {
		st, rev, err := e.Store.Load(g.config, g.key)
		if err != nil || st == nil || st.Due.IsZero() {
			continue
		}
		d := Decision{Config: g.config, Key: g.key, Cause: "due@" + st.Due.UTC().Format(time.RFC3339Nano)}
		st.Due = time.Time{}
		if a := st.Alert; a != nil {
			a.State, a.Acted = StateOn, now
			d.Act = true
			// Silences match on the newest event collected (its labels
			// are not kept).
			if n := len(a.Events); n > 0 {
				if name := e.silence(g.config, &events.Event{Data: a.Events[n-1]}, now); name != "" {
					a.Acted, d.Act, d.Silenced = time.Time{}, false, name
				}
			}
		}
		d.Alert = copyAlert(st.Alert)
		if r := e.Rule(g.config); r != nil {
			if err := e.plan(r, &d, st); err != nil {
				return out, err
			}
		}
		if err := e.Store.Save(g.config, g.key, st, rev); errors.Is(err, ErrConflict) {
			continue // another engine acted on it
		} else if err != nil {
			return out, err
		}
		out = append(out, d)
	}
	return out, nil
}

// fire raises the group's alert, or counts a match against its throttle.
// A new alert carries evs (the events of its window), else the event.
func (e *Engine) fire(r *Rule, st *GroupState, ev *events.Event, now time.Time, d *Decision, evs []events.Record) {
	level := r.Spec.Level
	if level == "" {
		level = LevelLow
	}
	a := st.Alert
	if a == nil || a.State == StateResolved || a.State == StateDismissed {
		id := ""
		if e.NewID != nil {
			id = e.NewID()
		}
		st.Alert = &Alert{
			ID: id, Config: r.Name, Key: d.Key, State: StateOn, Level: level,
			ObjType: ev.Data.ObjType, ObjName: ev.Data.ObjName, ObjUUID: ev.Data.ObjUUID,
			Raised: now, Acted: now, Events: []events.Record{ev.Data},
		}
		if len(evs) > 0 {
			st.Alert.Events = slices.Clone(evs[max(0, len(evs)-MaxAlertEvents):])
		}
		d.Act, d.Raised = true, true
		return
	}
	a.Events = appendEvent(a.Events, ev.Data)
	throttle := DefaultThrottle
	if r.Spec.Throttle != nil {
		throttle = r.Spec.Throttle.D()
	}
	if now.Sub(a.Acted) < throttle {
		a.State = StateThrottled
		a.ThrottleCount++
		d.Throttled = true
		return
	}
	a.State, a.Acted = StateOn, now
	d.Act = true
}

// Expire removes alerts raised longer ago than their config's expiry, and
// returns them. The events stay in the event stream.
func (e *Engine) Expire() ([]Alert, error) {
	e.mu.Lock()
	expiry := map[string]time.Duration{}
	for _, r := range e.rules {
		expiry[r.Name] = r.Spec.Expiry.D()
		if expiry[r.Name] == 0 {
			expiry[r.Name] = DefaultExpiry
		}
	}
	e.mu.Unlock()
	now := e.Now()
	type gone struct{ config, key string }
	var del []gone
	var out []Alert
	err := e.Store.Range("", func(config, key string, s *GroupState) bool {
		exp, ok := expiry[config]
		if !ok {
			exp = DefaultExpiry
		}
		if s.Alert != nil && now.Sub(s.Alert.Raised) >= exp {
			out = append(out, *copyAlert(s.Alert))
			del = append(del, gone{config, key})
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	for _, g := range del {
		if err := e.Store.Delete(g.config, g.key); err != nil {
			return out, err
		}
	}
	return out, nil
}

// HopsExtension is the extension attribute that counts how many
// publish_event actions led to an event.
const HopsExtension = "vigilhops"

// MaxHops bounds a chain of publish_event actions: an alert raised by an
// event that many actions deep publishes no further event.
const MaxHops = 8

// Hops returns the publish_event actions that led to ev.
func Hops(ev *events.Event) int {
	switch v := ev.Extensions[HopsExtension].(type) {
	case json.Number:
		n, _ := v.Int64()
		return int(n)
	case int:
		return v
	case int64:
		return int(v)
	case float64:
		return int(v)
	}
	return 0
}

// MaxKeptDetails bounds the event_details an alert keeps of one event;
// larger ones are replaced by {"vigil_truncated": {"bytes": N, "keys":
// [...]}}, so that a state with its events stays within one write.
const MaxKeptDetails = 4 << 10

// boundDetails returns ev, or a copy whose details are replaced by a
// marker when they are over MaxKeptDetails.
func boundDetails(ev *events.Event) *events.Event {
	size := 0
	keys := make([]string, 0, len(ev.Data.EventDetails))
	for k, v := range ev.Data.EventDetails {
		size += len(k) + len(v)
		keys = append(keys, k)
	}
	if size <= MaxKeptDetails {
		return ev
	}
	sort.Strings(keys)
	marker, _ := json.Marshal(map[string]any{"bytes": size, "keys": keys})
	c := *ev
	c.Data.EventDetails = map[string]json.RawMessage{"vigil_truncated": marker}
	return &c
}

func appendEvent(l []events.Record, r events.Record) []events.Record {
	l = append(l, r)
	if len(l) > MaxAlertEvents {
		l = l[len(l)-MaxAlertEvents:]
	}
	return l
}

func copyAlert(a *Alert) *Alert {
	if a == nil {
		return nil
	}
	c := *a
	c.Events = slices.Clone(a.Events)
	c.Actions = slices.Clone(a.Actions)
	return &c
}

// MemoryStore is a StateStore in memory.
type MemoryStore struct {
	mu  sync.Mutex
	m   map[[2]string]memEntry
	rev uint64
}

type memEntry struct {
	s   *GroupState
	rev uint64
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{m: map[[2]string]memEntry{}} }

// Load returns a copy of the state and its revision, or nil and 0.
func (s *MemoryStore) Load(config, key string) (*GroupState, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[[2]string{config, key}]
	if !ok {
		return nil, 0, nil
	}
	c := *e.s
	c.Hits, c.Recent, c.Seen, c.Outbox, c.Alert = slices.Clone(e.s.Hits), slices.Clone(e.s.Recent), slices.Clone(e.s.Seen), slices.Clone(e.s.Outbox), copyAlert(e.s.Alert)
	return &c, e.rev, nil
}

// Save stores st if the revision is still rev.
func (s *MemoryStore) Save(config, key string, st *GroupState, rev uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]string{config, key}
	if s.m[k].rev != rev {
		return fmt.Errorf("%s %s: %w", config, key, ErrConflict)
	}
	s.rev++
	s.m[k] = memEntry{st, s.rev}
	return nil
}

// Delete removes a state.
func (s *MemoryStore) Delete(config, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, [2]string{config, key})
	return nil
}

// Range calls f for every state of config ("": all), in no order.
func (s *MemoryStore) Range(config string, f func(config, key string, st *GroupState) bool) error {
	s.mu.Lock()
	all := make(map[[2]string]*GroupState, len(s.m))
	for k, v := range s.m {
		if config == "" || k[0] == config {
			all[k] = v.s
		}
	}
	s.mu.Unlock()
	for k, v := range all {
		if !f(k[0], k[1], v) {
			break
		}
	}
	return nil
}

// ErrNoAlert is wrapped when an alert is not found.
var ErrNoAlert = errors.New("no such alert")

// update applies f to a group's alert with the given id, again from a fresh
// load on a conflicting write; f returns false to write nothing.
func (e *Engine) update(config, key, id string, f func(a *Alert) bool) (*Alert, error) {
	for range maxConflicts {
		st, rev, err := e.Store.Load(config, key)
		if err != nil {
			return nil, err
		}
		if st == nil || st.Alert == nil || st.Alert.ID != id {
			return nil, fmt.Errorf("%s: %w", id, ErrNoAlert)
		}
		if !f(st.Alert) {
			return copyAlert(st.Alert), nil
		}
		err = e.Store.Save(config, key, st, rev)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return copyAlert(st.Alert), nil
	}
	return nil, fmt.Errorf("%s: %d conflicting writes in a row: %w", id, maxConflicts, ErrConflict)
}

// Dismiss sets an alert's state to DISMISSED: its actions stop, and the
// next match raises a new alert.
func (e *Engine) Dismiss(config, key, id string) (*Alert, error) {
	return e.update(config, key, id, func(a *Alert) bool {
		if a.State == StateDismissed {
			return false
		}
		a.State = StateDismissed
		return true
	})
}

// Alerts returns the alerts of config ("": all) for which keep is true.
func (e *Engine) Alerts(config string, keep func(*Alert) bool) ([]Alert, error) {
	var out []Alert
	err := e.Store.Range(config, func(_, _ string, s *GroupState) bool {
		if s.Alert != nil && (keep == nil || keep(s.Alert)) {
			out = append(out, *copyAlert(s.Alert))
		}
		return true
	})
	return out, err
}
