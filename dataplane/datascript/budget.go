package datascript

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// The budget of a run is enforced through gopher-lua's context check,
// which its VM makes before every instruction: each state is its own
// context.Context, set once with SetContext, whose Done channel the
// engine's watchdog closes when the run's deadline passes. Arming a run
// is one atomic store, so the hot path makes no timer and no context.

var errBudgetExceeded = errors.New(errBudget)

// Deadline implements context.Context; the deadline is the watchdog's.
func (st *state) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done implements context.Context.
func (st *state) Done() <-chan struct{} { return st.done }

// Err implements context.Context: the budget error once the watchdog has
// stopped the state.
func (st *state) Err() error {
	if st.deadline.Load() < 0 {
		return errBudgetExceeded
	}
	return nil
}

// Value implements context.Context.
func (st *state) Value(any) any { return nil }

// watchdogTick is how often the watchdog looks at running states; a run
// is stopped at most this long after its budget.
const watchdogTick = 2 * time.Millisecond

// watchdogIdle is how many idle ticks the watchdog waits before it exits.
const watchdogIdle = 500

// watchdog stops runs past their deadline. A state's deadline is 0 when
// idle, the run's deadline in Unix nanoseconds while running, and -1 once
// stopped; the watchdog and the run race for it with compare-and-swap, so
// exactly one of them decides whether the run was stopped.
type watchdog struct {
	mu     sync.Mutex
	states map[*state]struct{}
	active atomic.Int64
	on     atomic.Bool
}

func (w *watchdog) init() { w.states = map[*state]struct{}{} }

func (w *watchdog) add(st *state) {
	w.mu.Lock()
	w.states[st] = struct{}{}
	w.mu.Unlock()
}

func (w *watchdog) remove(st *state) {
	w.mu.Lock()
	delete(w.states, st)
	w.mu.Unlock()
}

// running counts runs in and out, and starts the watchdog goroutine when
// a run starts while it is not running.
func (w *watchdog) running(d int64) {
	if w.active.Add(d) > 0 && !w.on.Load() && w.on.CompareAndSwap(false, true) {
		go w.loop()
	}
}

func (w *watchdog) loop() {
	t := time.NewTicker(watchdogTick)
	defer t.Stop()
	idle := 0
	for now := range t.C {
		w.scan(now.UnixNano())
		if w.active.Load() > 0 {
			idle = 0
			continue
		}
		if idle++; idle < watchdogIdle {
			continue
		}
		w.on.Store(false)
		// A run may have started between the check and the store.
		if w.active.Load() == 0 || !w.on.CompareAndSwap(false, true) {
			return
		}
		idle = 0
	}
}

func (w *watchdog) scan(now int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for st := range w.states {
		if d := st.deadline.Load(); d > 0 && now > d && st.deadline.CompareAndSwap(d, -1) {
			close(st.done)
		}
	}
}
