package datascript

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/vigilhq/vigil/dataplane/spec"
)

// Defaults of an Env.
const (
	DefaultBudget    = 50 * time.Millisecond
	DefaultQueueWait = 10 * time.Millisecond
	DefaultMaxString = 1 << 20
	// DefaultEventRate and DefaultEventBurst bound vigil.event per
	// virtual service.
	DefaultEventRate  = 100
	DefaultEventBurst = 200
)

// ErrBusy is returned by Run when every Lua state of the engine is busy
// for longer than Env.QueueWait; the proxy answers 503.
var ErrBusy = errors.New("datascript: all script states busy")

// PoolView is what scripts may ask the proxy about pools. Choosing a
// server is not the view's business: avi.pool.select records the choice on
// the Txn.
type PoolView interface {
	// Exists reports whether the pool is configured.
	Exists(pool string) bool
	// Servers returns how many of the pool's servers are up, and how many
	// there are.
	Servers(pool string) (up, total int)
	// ServerStatus reports whether the server (IP or hostname) at port is
	// up, and whether the pool has such a server at all. Port 0 means the
	// server's own port.
	ServerStatus(pool, server string, port int) (up, known bool)
}

// Env is what a virtual service gives its scripts. The zero value of each
// field is safe: defaults are applied by NewEngine and Update, which never
// change the caller's Env.
type Env struct {
	// VS is the virtual service's name (avi.vs.name()).
	VS string
	// Sets run in this order for each event.
	Sets []*Set
	// StringGroups and IPGroups by name; a set may use those it lists.
	StringGroups map[string]*StringGroup
	IPGroups     map[string]*IPGroup
	// Pools answers avi.pool.*; nil means no pool exists.
	Pools PoolView
	// Publish sends vigil.event(EVENT_ID, details); nil drops them.
	Publish func(eventID string, details map[string]any) error
	// OpenConns gives avi.vs.get_open_conns(); nil gives 0.
	OpenConns func() int
	// MaxConcurrent bounds the Lua states, and so the scripts running at
	// once; default spec.DefaultMaxConcurrentScripts.
	MaxConcurrent int
	// QueueWait is how long Run waits for a free state before ErrBusy;
	// default 10ms.
	QueueWait time.Duration
	// Budget is the wall-clock time one Run may take; default 50ms. See
	// the package documentation for how it compares with Avi's
	// instruction count.
	Budget time.Duration
	// MaxString bounds a string made by string.rep, string.format,
	// string.gsub or table.concat; default 1 MiB.
	MaxString int
	// Clock gives the time for table lifetimes and rate limiters; default
	// time.Now.
	Clock func() time.Time
	// RateLimit is the limit of avi.vs.rate_limit (Avi's rate-limit
	// profile of the application profile); nil never limits.
	// RateLimitAction is what it reports when exceeded, one of the
	// avi.RL_ACTION_* names ("RL_ACTION_CLOSE_CONN", "RL_ACTION_LOCAL_RSP",
	// "RL_ACTION_REDIRECT", "RL_ACTION_NONE"); default RL_ACTION_NONE.
	RateLimit       *spec.RateLimiter
	RateLimitAction string
	// EventRate per second and EventBurst bound vigil.event; defaults 100
	// and 200.
	EventRate  float64
	EventBurst int
}

func (env Env) withDefaults() Env {
	if env.MaxConcurrent <= 0 {
		env.MaxConcurrent = spec.DefaultMaxConcurrentScripts
	}
	if env.QueueWait <= 0 {
		env.QueueWait = DefaultQueueWait
	}
	if env.Budget <= 0 {
		env.Budget = DefaultBudget
	}
	if env.MaxString <= 0 {
		env.MaxString = DefaultMaxString
	}
	if env.Clock == nil {
		env.Clock = time.Now
	}
	if env.RateLimitAction == "" {
		env.RateLimitAction = rlActionNone
	}
	if env.EventRate <= 0 {
		env.EventRate = DefaultEventRate
	}
	if env.EventBurst <= 0 {
		env.EventBurst = DefaultEventBurst
	}
	return env
}

// engineConfig is one immutable configuration of an engine.
type engineConfig struct {
	env Env
	has [numEvents]bool
}

// Engine runs a virtual service's DataScripts. It owns a bounded pool of
// Lua states, the service's tables (avi.vs.table_*) and rate limiters, and
// keeps them across Update. Tables and limiters live in this process only:
// unlike Avi they are not mirrored to other instances serving the same
// virtual service.
type Engine struct {
	cfg  atomic.Pointer[engineConfig]
	pool atomic.Pointer[statePool]

	tables   *tables
	limiters *limiters
	events   bucket // vigil.event, per virtual service
	eventsMu sync.Mutex

	wd watchdog
}

// NewEngine returns an engine for env. It starts no goroutine until a
// script runs, and needs no Close: the watchdog that enforces the budget
// exits by itself when no script has run for a while.
func NewEngine(env Env) *Engine {
	e := &Engine{}
	env = env.withDefaults()
	e.tables = newTables()
	e.limiters = newLimiters()
	e.wd.init()
	e.install(env)
	return e
}

// Update replaces the engine's configuration (sets, groups, pools, limits)
// while keeping its tables, rate limiters and idle Lua states. Runs in
// progress finish with the configuration they started with.
func (e *Engine) Update(env Env) {
	e.install(env.withDefaults())
}

func (e *Engine) install(env Env) {
	c := &engineConfig{env: env}
	for _, s := range env.Sets {
		for ev := range numEvents {
			if s.protos[ev] != nil {
				c.has[ev] = true
			}
		}
	}
	e.cfg.Store(c)
	e.eventsMu.Lock()
	e.events.configure(env.EventRate, float64(env.EventBurst), env.Clock())
	e.eventsMu.Unlock()
	if old := e.pool.Load(); old == nil || cap(old.sem) != env.MaxConcurrent {
		p := newStatePool(env.MaxConcurrent)
		if old = e.pool.Swap(p); old != nil {
			old.retire(&e.wd)
		}
	}
}

// Has reports whether any set has a chunk for the event evt; the proxy
// skips Lua entirely when it does not.
func (e *Engine) Has(evt string) bool {
	ev, ok := eventOf(evt)
	return ok && e.cfg.Load().has[ev]
}

// ScriptError is a script that failed at run time or ran out of budget.
// The proxy answers 500 and logs it as Avi's datascript_error_trace.
type ScriptError struct {
	Set, Evt string
	// Err is the message, e.g. `[string "S"]:2: attempt to call a nil
	// value`, or that the budget was exceeded.
	Err string
	// Stack is the Lua stack trace, when there is one.
	Stack string
}

func (e *ScriptError) Error() string {
	return fmt.Sprintf("datascript %s, event %s: %s", e.Set, shortEvent(e.Evt), e.Err)
}

// errBudget is the message of a run stopped by its budget.
const errBudget = "execution budget exceeded"

// Run runs each set's chunk for evt, in order, on one Lua state, until one
// of them takes a terminal action (t.Action). It returns ErrBusy when no
// state is free in time, a *ScriptError when a script fails or exceeds its
// budget, and ctx's error when ctx ends first.
func (e *Engine) Run(ctx context.Context, evt string, t *Txn) error {
	c := e.cfg.Load()
	ev, ok := eventOf(evt)
	if !ok {
		return fmt.Errorf("datascript: run: unknown event %q", evt)
	}
	if !c.has[ev] {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("datascript: run %s: %w", shortEvent(evt), err)
	}
	p := e.pool.Load()
	st, err := p.acquire(ctx, c.env.QueueWait)
	if err != nil {
		return err
	}
	if st == nil {
		st = newState(e)
		e.wd.add(st)
	}
	budget := c.env.Budget
	if dl, ok := ctx.Deadline(); ok {
		budget = min(budget, time.Until(dl))
	}
	deadline := time.Now().Add(budget).UnixNano()
	st.deadline.Store(deadline)
	e.wd.running(1)
	err = st.run(c, ev, t)
	e.wd.running(-1)
	if !st.deadline.CompareAndSwap(deadline, 0) {
		// The watchdog stopped this state: it may be anywhere inside
		// gopher-lua, so it is not used again.
		e.wd.remove(st)
		st.L.Close()
		st = nil
	}
	p.release(st, &e.wd)
	return err
}

// statePool is a bounded pool of Lua states: sem holds a token per run
// in progress, idle the states made and not in use, so that no more states
// are made than runs have been concurrent.
type statePool struct {
	sem     chan struct{}
	idle    chan *state
	retired atomic.Bool
}

func newStatePool(n int) *statePool {
	return &statePool{sem: make(chan struct{}, n), idle: make(chan *state, n)}
}

// acquire waits up to wait for a run's token and returns an idle state,
// or nil when a new one must be made.
func (p *statePool) acquire(ctx context.Context, wait time.Duration) (*state, error) {
	select {
	case p.sem <- struct{}{}:
	default:
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case p.sem <- struct{}{}:
		case <-timer.C:
			return nil, ErrBusy
		case <-ctx.Done():
			return nil, fmt.Errorf("datascript: wait for a script state: %w", ctx.Err())
		}
	}
	select {
	case st := <-p.idle:
		return st, nil
	default:
		return nil, nil
	}
}

// release gives back the run's token and its state, nil for one dropped.
func (p *statePool) release(st *state, wd *watchdog) {
	if st != nil {
		if p.retired.Load() {
			wd.remove(st)
			st.L.Close()
		} else {
			p.idle <- st
		}
	}
	<-p.sem
}

// retire drops the idle states of a pool replaced by Update; states in use
// are dropped when they come back.
func (p *statePool) retire(wd *watchdog) {
	p.retired.Store(true)
	for {
		select {
		case st := <-p.idle:
			wd.remove(st)
			st.L.Close()
		default:
			return
		}
	}
}

// run runs the chunks of ev on st for t.
func (st *state) run(c *engineConfig, ev event, t *Txn) error {
	st.begin(c, ev, t)
	defer st.end()
	for _, s := range c.env.Sets {
		proto := s.protos[ev]
		if proto == nil {
			continue
		}
		st.set = s
		fn := st.function(proto)
		fn.Env = st.runEnv
		st.L.Push(fn)
		err := st.L.PCall(0, 0, nil)
		st.cleanEnv()
		if err != nil {
			if err == st.terminal { //nolint:errorlint // identity of the sentinel
				return nil
			}
			if st.deadline.Load() < 0 {
				return &ScriptError{Set: s.name, Evt: eventNames[ev], Err: errBudget}
			}
			se := &ScriptError{Set: s.name, Evt: eventNames[ev], Err: err.Error()}
			var aerr *lua.ApiError
			if errors.As(err, &aerr) {
				se.Err = lua.LVAsString(aerr.Object)
				if aerr.Object.Type() != lua.LTString && aerr.Object.Type() != lua.LTNumber {
					se.Err = aerr.Object.String()
				}
				se.Stack = aerr.StackTrace
			}
			return se
		}
		if t.Action.Kind != ActionNone {
			return nil
		}
	}
	return nil
}
