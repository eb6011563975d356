// Package controller is vigil's REST API: the route table, bearer-token
// authentication and the role matrix, the handlers for objects, events,
// tokens and ControlScript executions, the OpenAPI document, and the API's
// metrics.
package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/events"
)

// ObjectStore is what the API needs from config.Store.
type ObjectStore interface {
	// Registry returns the registered kinds.
	Registry() *config.Registry
	// Get returns the raw stored object; errors.Is(err, config.ErrNotFound)
	// when it is absent.
	Get(ctx context.Context, kind, name string) (*config.Object, error)
	// List returns the raw stored objects of kind, sorted by name.
	List(ctx context.Context, kind string) ([]*config.Object, error)
	// Apply creates or updates objs, all or nothing.
	Apply(ctx context.Context, objs []*config.Object, opts config.ApplyOptions) ([]config.Result, error)
	// Delete deletes refs, all or nothing.
	Delete(ctx context.Context, refs []config.Ref, opts config.DeleteOptions) ([]config.Result, error)
	// Redact returns a copy of obj that is safe to show.
	Redact(obj *config.Object) *config.Object
	// Watch delivers the current objects of kind, then a Change with
	// Op config.OpSynced, then every change, until ctx ends.
	Watch(ctx context.Context, kind string, fn func(config.Change)) error
}

// EventBus is what the API needs from events.Bus.
type EventBus interface {
	// Publish stores ev and returns once JetStream acknowledged it.
	Publish(ctx context.Context, ev *events.Event) (events.PublishResult, error)
	// PublishBatch stores evs, pipelined, and returns once JetStream
	// acknowledged each; on an error some may be stored.
	PublishBatch(ctx context.Context, evs []*events.Event) ([]events.PublishResult, error)
	// List returns stored events matching f, oldest first, and the sequence
	// to continue from (0 when nothing more is stored now).
	List(ctx context.Context, f events.Filter) ([]events.Stored, uint64, error)
	// Follow calls fn for each new event matching f until ctx ends or fn
	// returns an error.
	Follow(ctx context.Context, f events.Filter, fn func(events.Stored) error) error
	// ListRejected returns ingested messages that failed validation, oldest
	// first, from startSeq on, and the sequence to continue from.
	ListRejected(ctx context.Context, startSeq uint64, limit int) ([]events.Rejected, uint64, error)
	// Ready returns nil when JetStream answers.
	Ready() error
}

// Options configures [New]. Store and Bus are required; every other zero
// value is a safe default.
type Options struct {
	// Store holds the objects and the tokens.
	Store ObjectStore
	// Bus stores and serves events.
	Bus EventBus
	// Logger receives the API's logs. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock (token expiry, `since` durations). Default time.Now.
	Now func() time.Time
	// Registerer receives the API's metrics. Default: a private registry.
	Registerer prometheus.Registerer
	// Gatherer is what /metrics serves. Default: Registerer when it is a
	// Gatherer, else prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// MetricsPublic serves /metrics without a token.
	MetricsPublic bool
	// Version is reported by /healthz and the OpenAPI document.
	Version string
	// Status, when set, gives the run-time status of objects of the kinds
	// it knows, shown with them on reads.
	Status ObjectStatus
	// Hooks serves /hooks/{name} (webhook receivers, which check their own
	// auth). Nil answers 404 there.
	Hooks http.Handler
	// Runner runs ControlScripts and keeps their executions. Nil answers
	// 503 unavailable on the run and execution routes.
	Runner Runner
	// Alerts serves alerts and dead letters. Nil answers 503 unavailable
	// on their routes.
	Alerts Alerts
	// ExecTokenKey signs the tokens of executions (see ExecutionToken);
	// without it scripts get no execution token.
	ExecTokenKey []byte
	// EventIDs, when set, remembers the ids that callers give their events
	// beyond JetStream's duplicate window (events.IDs).
	EventIDs EventIDs
}

// EventIDs remembers the ids callers gave to stored events: an event
// posted again with a remembered id is answered as a duplicate with the
// first one's sequence, and not stored again.
type EventIDs interface {
	Lookup(ctx context.Context, id string) (seq uint64, ok bool, err error)
	Remember(ctx context.Context, id string, seq uint64) error
}

// Body limits per route family.
const (
	MaxEventBody = 1 << 20
	// MaxBatchBody and MaxEventBatch bound a CloudEvents batch.
	MaxBatchBody  = 8 << 20
	MaxEventBatch = 1000
	MaxObjectBody = 8 << 20
	MaxTokenBody  = 64 << 10
	MaxHookBody   = 1 << 20
	MaxRunBody    = 1 << 20
)

// keepAliveInterval is how often an idle event stream gets a comment line.
const keepAliveInterval = 15 * time.Second

// API is vigil's REST API. Build it with [New], call [API.Start] before
// serving [API.Handler], and [API.Stop] when done.
type API struct {
	store         ObjectStore
	bus           EventBus
	ids           EventIDs
	log           *slog.Logger
	now           func() time.Time
	gatherer      prometheus.Gatherer
	metricsPublic bool
	version       string
	hooks         http.Handler
	status        ObjectStatus
	runner        Runner
	alerts        Alerts
	execKey       []byte
	keepAlive     time.Duration
	logPoll       time.Duration // how often a followed execution is read

	routes  []Route
	mux     *http.ServeMux
	openapi []byte
	metrics *apiMetrics
	tokens  *tokenTable

	mu      sync.Mutex
	cancel  context.CancelFunc
	runCtx  context.Context // ends on Stop
	done    chan struct{}
	stopped bool
}

// New returns an API for opts. It does not change opts.
func New(opts Options) (*API, error) {
	if opts.Store == nil {
		return nil, errors.New("controller: Options.Store is required")
	}
	if opts.Bus == nil {
		return nil, errors.New("controller: Options.Bus is required")
	}
	a := &API{
		store:         opts.Store,
		bus:           opts.Bus,
		ids:           opts.EventIDs,
		log:           opts.Logger,
		now:           opts.Now,
		gatherer:      opts.Gatherer,
		metricsPublic: opts.MetricsPublic,
		version:       opts.Version,
		hooks:         opts.Hooks,
		status:        opts.Status,
		runner:        opts.Runner,
		alerts:        opts.Alerts,
		execKey:       opts.ExecTokenKey,
		keepAlive:     keepAliveInterval,
		logPoll:       logPollInterval,
		tokens:        newTokenTable(),
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	a.log = a.log.With("component", "api")
	if a.now == nil {
		a.now = time.Now
	}
	reg := opts.Registerer
	if reg == nil {
		r := prometheus.NewRegistry()
		reg = r
		if a.gatherer == nil {
			a.gatherer = r
		}
	}
	if a.gatherer == nil {
		if g, ok := reg.(prometheus.Gatherer); ok {
			a.gatherer = g
		} else {
			a.gatherer = prometheus.DefaultGatherer
		}
	}
	m, err := newAPIMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	a.metrics = m

	a.routes = a.routeTable()
	a.mux = http.NewServeMux()
	for _, rt := range a.routes {
		a.mux.Handle(rt.Method+" "+rt.Pattern, a.wrap(rt))
	}
	a.openapi, err = a.buildOpenAPI()
	if err != nil {
		return nil, fmt.Errorf("controller: openapi: %w", err)
	}
	return a, nil
}

// Routes returns the route table the handler is built from, in order.
func (a *API) Routes() []Route { return append([]Route(nil), a.routes...) }

// Handler returns the API's HTTP handler.
func (a *API) Handler() http.Handler { return http.HandlerFunc(a.serveHTTP) }

// running returns the context that ends on Stop, or nil before Start.
func (a *API) running() context.Context {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.runCtx
}

// Start starts following the Token kind and returns once the current tokens
// are loaded, or with the error that stopped the first load. ctx bounds only
// that wait; the watch runs until Stop.
func (a *API) Start(ctx context.Context) error {
	a.mu.Lock()
	if a.cancel != nil || a.stopped {
		a.mu.Unlock()
		return errors.New("controller: already started")
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel
	a.runCtx = wctx
	a.done = make(chan struct{})
	a.mu.Unlock()

	firstSync := make(chan error, 1)
	go func() {
		defer close(a.done)
		a.watchTokens(wctx, firstSync)
	}()
	select {
	case err := <-firstSync:
		if err != nil {
			a.Stop(context.Background())
			return fmt.Errorf("controller: load tokens: %w", err)
		}
		return nil
	case <-ctx.Done():
		a.Stop(context.Background())
		return fmt.Errorf("controller: load tokens: %w", ctx.Err())
	}
}

// Stop ends the token watch and waits for it, or for ctx. It is idempotent.
func (a *API) Stop(ctx context.Context) {
	a.mu.Lock()
	a.stopped = true
	cancel, done := a.cancel, a.done
	a.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// serveHTTP is the API's entry point: it finds the route, answers unmatched
// requests with the JSON 404 or 405, and records metrics.
func (a *API) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	h, pattern := a.mux.Handler(r)
	route := pattern
	if pattern == "" {
		route = "unmatched"
		a.serveUnmatched(sw, r, h)
	} else {
		a.mux.ServeHTTP(sw, r)
	}
	status := sw.status
	if status == 0 {
		status = http.StatusOK
	}
	elapsed := time.Since(start)
	a.metrics.observe(route, status, elapsed)
	a.log.Debug("request", "method", r.Method, "path", r.URL.Path, "route", route,
		"status", status, "duration", elapsed, "token", sw.caller)
}

// serveUnmatched runs the mux's own answer for a request that matches no
// route (404, 405, or a redirect to a clean path) and turns the 404 and 405
// into the API's JSON errors.
func (a *API) serveUnmatched(w http.ResponseWriter, r *http.Request, h http.Handler) {
	rec := &headerRecorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	switch rec.status {
	case http.StatusMethodNotAllowed:
		if allow := rec.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		writeErrorBody(w, &Error{
			Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed,
			Message: fmt.Sprintf("method %s is not allowed on %s", r.Method, r.URL.Path),
		})
	case http.StatusNotFound, 0:
		writeErrorBody(w, errNotFound("", fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path)))
	default:
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body)
	}
}

// statusWriter remembers the status for metrics and logs. It passes
// Flush and the rest through to the underlying writer via Unwrap.
type statusWriter struct {
	http.ResponseWriter
	status int
	caller string
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush implements http.Flusher.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// headerRecorder captures the ServeMux's own small answers.
type headerRecorder struct {
	header http.Header
	status int
	body   []byte
}

func (r *headerRecorder) Header() http.Header { return r.header }

func (r *headerRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *headerRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if len(r.body) < 4096 {
		r.body = append(r.body, b...)
	}
	return len(b), nil
}
