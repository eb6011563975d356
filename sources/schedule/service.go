package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/events"
	"github.com/vigilhq/vigil/runner"
)

// Watcher is the part of the config store the scheduler follows.
type Watcher interface {
	Watch(ctx context.Context, kind string, fn func(config.Change)) error
}

// Publisher publishes events; *events.Bus is one.
type Publisher interface {
	Publish(ctx context.Context, ev *events.Event) (events.PublishResult, error)
}

// Scripts queues ControlScript runs; *runner.Runner is one.
type Scripts interface {
	Submit(ctx context.Context, req runner.RunRequest) (*runner.Execution, error)
}

var (
	_ Publisher = (*events.Bus)(nil)
	_ Scripts   = (*runner.Runner)(nil)
)

// Timings of the scheduler.
const (
	// ActionTimeout bounds one slot's action (a ControlScript queued, an
	// event published).
	ActionTimeout = 30 * time.Second
	// StaleClaim is how long a slot's claim may stay unfinished before
	// another instance that meets the slot takes it over.
	StaleClaim = 2 * ActionTimeout
	// maxWait bounds the timer, so a jump of the clock is seen.
	maxWait = time.Minute
)

// Options configure a Service.
type Options struct {
	// Store is followed for Schedule objects; required.
	Store Watcher
	// Publisher publishes the events of publish_event schedules and the
	// SCHEDULER_ACTION_SUCCESS / _FAILURE events; required.
	Publisher Publisher
	// Scripts queues the ControlScripts of controlscript schedules; nil
	// makes each of their slots fail (no runner in this process).
	Scripts Scripts
	// JS holds the buckets SlotsBucket and StateBucket; required.
	JS jetstream.JetStream
	// Replicas of the buckets when they are created; default 1.
	Replicas int
	// Logger receives the scheduler's logs; default none.
	Logger *slog.Logger
	// Clock tells the time; default time.Now.
	Clock func() time.Time
	// Registerer, when set, gets the scheduler's metrics.
	Registerer prometheus.Registerer
	// Instance names this process in claims and runs; default
	// "<hostname>-<pid>".
	Instance string
}

// Service fires the slots of every enabled Schedule. Several services
// (vigil instances) on one NATS fire each slot once: the one whose claim
// of the slot's key in SlotsBucket succeeds runs the action.
type Service struct {
	opts Options
	log  *slog.Logger
	m    *metrics

	st     *store
	cancel context.CancelFunc
	wg     sync.WaitGroup
	stop   sync.Once
	wake   chan struct{}

	mu      sync.Mutex
	entries map[string]*entry
	pending map[string]*config.Object // nil: deleted
	state   map[string]*State         // StateBucket, followed
}

// entry is one schedule as the loop sees it.
type entry struct {
	name, uuid string
	sched      *Schedule // nil when the spec does not compile
	err        string
	cursor     time.Time   // slots up to here are handled
	next       time.Time   // the first slot after cursor; zero: none
	run        *sync.Mutex // one firing of the schedule at a time
}

// New checks opts and returns a Service; Start begins firing.
func New(opts Options) (*Service, error) {
	switch {
	case opts.Store == nil:
		return nil, errors.New("schedule: Options.Store is required")
	case opts.Publisher == nil:
		return nil, errors.New("schedule: Options.Publisher is required")
	case opts.JS == nil:
		return nil, errors.New("schedule: Options.JS is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Instance == "" {
		host, _ := os.Hostname()
		opts.Instance = host + "-" + strconv.Itoa(os.Getpid())
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	return &Service{
		opts: opts, log: opts.Logger.With("component", "schedule", "instance", opts.Instance), m: m,
		wake: make(chan struct{}, 1), entries: map[string]*entry{},
		pending: map[string]*config.Object{}, state: map[string]*State{},
	}, nil
}

// Start opens the buckets, reads the last runs, follows the Schedule
// objects and fires their slots until ctx ends or Stop. Slots missed while
// no instance ran are handled by each schedule's policy as it is read.
func (s *Service) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	st, err := openStore(ctx, s.opts.JS, s.opts.Replicas)
	if err != nil {
		cancel()
		return fmt.Errorf("schedule: %w", err)
	}
	s.st = st
	if err := s.followState(ctx); err != nil {
		cancel()
		return fmt.Errorf("schedule: %w", err)
	}
	err = s.opts.Store.Watch(ctx, KindSchedule, func(c config.Change) {
		s.mu.Lock()
		switch c.Op {
		case config.OpPut:
			s.pending[c.Object.Name] = c.Object
		case config.OpDelete:
			s.pending[c.Object.Name] = nil
		default:
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		s.poke()
	})
	if err != nil {
		cancel()
		return fmt.Errorf("schedule: watch %s: %w", KindSchedule, err)
	}
	s.wg.Go(func() { s.loop(ctx) })
	return nil
}

// Stop stops firing and waits for the slots being fired; it may be called
// more than once.
func (s *Service) Stop() {
	s.stop.Do(func() {
		if s.cancel != nil {
			s.cancel()
		}
		s.wg.Wait()
	})
}

// followState keeps s.state up to date with StateBucket, and returns once
// it has read what is there.
func (s *Service) followState(ctx context.Context) error {
	w, err := s.st.state.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch %s: %w", StateBucket, err)
	}
	synced := make(chan struct{})
	s.wg.Go(func() {
		// Stopping a watch asks the server to drop its consumer; without
		// the server that waits for a timeout, which Stop need not.
		defer func() { go w.Stop() }() //nolint:errcheck // a read-only watch
		once := sync.Once{}
		defer once.Do(func() { close(synced) })
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					once.Do(func() { close(synced) })
					continue
				}
				if e.Operation() != jetstream.KeyValuePut {
					s.mu.Lock()
					delete(s.state, e.Key())
					s.mu.Unlock()
					continue
				}
				var st State
				if err := json.Unmarshal(e.Value(), &st); err != nil {
					s.log.Warn("bad schedule state", "schedule", e.Key(), "err", err)
					continue
				}
				s.noteState(e.Key(), &st)
			}
		}
	})
	select {
	case <-synced:
		return ctx.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// noteState merges st into what is known of the schedule's state: the
// later last run, the later handled time.
func (s *Service) noteState(name string, st *State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.state[name]
	if cur == nil {
		cur = &State{}
		s.state[name] = cur
	}
	if st.LastRun != nil && (cur.LastRun == nil || !cur.LastRun.Slot.After(st.LastRun.Slot)) {
		cur.LastRun = st.LastRun
	}
	if st.Handled.After(cur.Handled) {
		cur.Handled = st.Handled
	}
}

func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// loop is the one goroutine that reads changes, fires due slots and
// sleeps until the next slot of all schedules.
func (s *Service) loop(ctx context.Context) {
	timer := time.NewTimer(maxWait)
	defer timer.Stop()
	for {
		s.reconcile(ctx)
		timer.Reset(s.fireDue(ctx))
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// reconcile applies the config changes that arrived since the last call.
// A schedule read for the first time, or changed, has its missed slots
// handled: those after its last run, the time up to which an instance
// that started before dealt with them, or its last change, whichever is
// latest, up to now.
func (s *Service) reconcile(ctx context.Context) {
	type catchUp struct {
		e      *entry
		missed []time.Time
		upTo   time.Time
	}
	var work []catchUp
	var gone []string
	s.mu.Lock()
	if len(s.pending) == 0 {
		s.mu.Unlock()
		return
	}
	pending := s.pending
	s.pending = map[string]*config.Object{}
	now := s.opts.Clock()
	for name, obj := range pending {
		if obj == nil {
			delete(s.entries, name)
			delete(s.state, name)
			gone = append(gone, name)
			continue
		}
		e := &entry{name: name, uuid: obj.Metadata.UUID, run: &sync.Mutex{}}
		s.entries[name] = e
		sc, err := Compile(obj.Spec)
		if err != nil {
			e.err = err.Error()
			s.log.Error("schedule does not compile", "schedule", name, "err", err)
			continue
		}
		e.sched = sc
		if !sc.Enabled() {
			continue
		}
		floor := obj.Metadata.Updated
		if floor.IsZero() {
			floor = obj.Metadata.Created
		}
		if f := s.state[name].floor(); f.After(floor) {
			floor = f
		}
		e.cursor, e.next = now, sc.Next(now)
		if missed := sc.Missed(floor, e.next); len(missed) > 0 {
			s.log.Info("missed slots", "schedule", name, "policy", sc.Spec.Missed, "since", floor, "running", len(missed))
			work = append(work, catchUp{e, missed, now})
		}
	}
	s.mu.Unlock()

	for _, w := range work {
		// Recorded before any of them runs: an instance that starts later
		// reads it with, or before, their runs and counts from there.
		hctx, cancel := context.WithTimeout(ctx, ActionTimeout)
		if err := s.st.handled(hctx, w.e.name, w.upTo); err != nil && ctx.Err() == nil {
			s.log.Error("record missed slots handled", "schedule", w.e.name, "err", err)
		}
		cancel()
		s.dispatch(ctx, w.e, w.missed, time.Time{})
	}
	for _, name := range gone {
		fctx, cancel := context.WithTimeout(ctx, ActionTimeout)
		if err := s.st.forget(fctx, name); err != nil && ctx.Err() == nil {
			s.log.Warn("forget deleted schedule", "schedule", name, "err", err)
		}
		cancel()
	}
}

// fireDue dispatches the slots that are due and returns how long to sleep
// until the next one. When the loop fell behind (the process stalled or
// the clock jumped), the latest due slot fires and the ones it skipped
// over are handled by the missed policy.
func (s *Service) fireDue(ctx context.Context) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Clock()
	wait := maxWait
	for _, e := range s.entries {
		if e.next.IsZero() {
			continue
		}
		if !e.next.After(now) {
			latest := e.sched.Latest(e.cursor, now)
			if latest.IsZero() { // not expected: next is in (cursor, now]
				latest = e.next
			}
			missed := e.sched.Missed(e.cursor, latest)
			e.cursor, e.next = latest, e.sched.Next(latest)
			s.dispatch(ctx, e, missed, latest)
			if e.next.IsZero() {
				continue
			}
		}
		wait = min(wait, e.next.Sub(now))
	}
	return max(wait, 0)
}

// dispatch fires missed, then current (unless zero), one after the other
// on their own goroutine; firings of one schedule do not overlap.
func (s *Service) dispatch(ctx context.Context, e *entry, missed []time.Time, current time.Time) {
	s.wg.Go(func() {
		e.run.Lock()
		defer e.run.Unlock()
		for _, slot := range missed {
			if ctx.Err() != nil {
				return
			}
			s.fire(ctx, e, slot, true)
		}
		if !current.IsZero() && ctx.Err() == nil {
			s.fire(ctx, e, current, false)
		}
	})
}

// fire claims the slot and, when this instance wins it, runs the action,
// records the run and publishes its result.
func (s *Service) fire(ctx context.Context, e *entry, slot time.Time, missed bool) {
	log := s.log.With("schedule", e.name, "slot", slot)
	key := slotKey(e.name, slot)
	ttl := claimTTL(e.sched.Interval(slot))
	c := claim{Instance: s.opts.Instance, Claimed: s.opts.Clock()}
	// Once started, a slot is carried through even when Stop comes
	// meanwhile: a claim made but not acted on would keep the other
	// instances from the slot.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ActionTimeout)
	defer cancel()
	rev, err := s.st.claim(cctx, key, c, ttl, StaleClaim)
	if err != nil {
		s.m.slots.WithLabelValues("error").Inc()
		log.Error("claim slot", "err", err)
		return
	}
	if rev == 0 {
		s.m.slots.WithLabelValues("taken").Inc()
		log.Debug("slot taken by another instance")
		return
	}

	r := s.act(ctx, e, slot, missed)
	pctx, pcancel := context.WithTimeout(context.WithoutCancel(ctx), ActionTimeout)
	defer pcancel()
	c.Status = r.Status
	if err := s.st.finish(pctx, key, c, rev, ttl); err != nil {
		log.Warn("finish claim", "err", err)
	}
	if err := s.st.record(pctx, e.name, r); err != nil {
		log.Error("record run", "err", err)
	}
	s.noteState(e.name, &State{LastRun: r})
	if err := s.publishResult(pctx, e, r); err != nil {
		log.Error("publish result", "err", err)
	}
	s.m.slots.WithLabelValues(r.Status).Inc()
	if r.Status == StatusFailed {
		log.Warn("slot failed", "action", r.Action, "missed", missed, "err", r.Error)
		return
	}
	log.Info("slot fired", "action", r.Action, "missed", missed, "execution_id", r.ExecutionID, "event", r.EventID)
}

// act runs the schedule's action for slot.
// A claimed slot is carried through even when Stop comes meanwhile.
func (s *Service) act(ctx context.Context, e *entry, slot time.Time, missed bool) *Run {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ActionTimeout)
	defer cancel()
	now := s.opts.Clock()
	r := &Run{Slot: slot, Time: now, Action: e.sched.Action(), Missed: missed, Instance: s.opts.Instance}
	var err error
	switch r.Action {
	case ActionControlScript:
		r.ExecutionID = ExecutionID(e.name, slot)
		err = s.runScript(ctx, e, slot, missed, r.ExecutionID)
	default:
		r.EventID = EventID(e.name, slot)
		err = s.publishEvent(ctx, e, slot, missed, now)
	}
	r.Status = StatusSucceeded
	if err != nil {
		r.Status, r.Error = StatusFailed, err.Error()
	}
	return r
}

func (s *Service) runScript(ctx context.Context, e *entry, slot time.Time, missed bool, id string) error {
	script := e.sched.Spec.ControlScript
	if s.opts.Scripts == nil {
		return fmt.Errorf("run %s: no runner in this process", script)
	}
	alert, err := alertJSON(e, slot, missed)
	if err != nil {
		return fmt.Errorf("run %s: alert: %w", script, err)
	}
	_, err = s.opts.Scripts.Submit(ctx, runner.RunRequest{
		ID: id, Script: script, Trigger: runner.TriggerSchedule, User: "schedule:" + e.name, Alert: alert,
	})
	if err != nil {
		return fmt.Errorf("run %s: %w", script, err)
	}
	return nil
}

func (s *Service) publishEvent(ctx context.Context, e *entry, slot time.Time, missed bool, now time.Time) error {
	p := e.sched.Spec.PublishEvent
	objType, objName := p.ObjType, p.ObjName
	if objType == "" {
		objType = ObjType
	}
	if objName == "" {
		objName = e.name
	}
	var details any
	if p.Details != nil {
		details = p.Details
	}
	ev, err := events.New(p.EventID, objType, objName, details, Source, now)
	if err != nil {
		return fmt.Errorf("event %s: %w", p.EventID, err)
	}
	ev.ID = EventID(e.name, slot)
	ev.Extensions = slotExtensions(e.name, slot, missed)
	if objType == ObjType && objName == e.name {
		ev.Data.ObjUUID = e.uuid
	}
	if _, err := s.opts.Publisher.Publish(ctx, ev); err != nil {
		return fmt.Errorf("publish %s: %w", p.EventID, err)
	}
	return nil
}

// publishResult publishes SCHEDULER_ACTION_SUCCESS or _FAILURE for r.
func (s *Service) publishResult(ctx context.Context, e *entry, r *Run) error {
	id := "SCHEDULER_ACTION_SUCCESS"
	if r.Status != StatusSucceeded {
		id = "SCHEDULER_ACTION_FAILURE"
	}
	ev, err := events.New(id, ObjType, e.name, resultDetails(e, r), Source, r.Time)
	if err != nil {
		return fmt.Errorf("event %s: %w", id, err)
	}
	ev.ID = resultEventID(e.name, r.Slot)
	ev.Extensions = slotExtensions(e.name, r.Slot, r.Missed)
	ev.Data.ObjUUID = e.uuid
	if _, err := s.opts.Publisher.Publish(ctx, ev); err != nil {
		return fmt.Errorf("publish %s: %w", id, err)
	}
	return nil
}
