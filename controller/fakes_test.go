package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/events"
	"github.com/vigilhq/vigil/runner"
	"github.com/vigilhq/vigil/vigiltest"
)

// memStore is an in-memory ObjectStore with the real store's rules that the
// API relies on: validation, Internal kinds, revisions (0 = create only),
// all-or-nothing batches and a watch. Function fields override a method.
type memStore struct {
	reg *config.Registry
	now func() time.Time

	mu       sync.Mutex
	objs     map[string]*config.Object // by Kind/name
	rev      uint64
	watchers map[int]func(config.Change)
	nextW    int
	fnMu     sync.Mutex // serializes watcher calls

	listFn  func(ctx context.Context, kind string) ([]*config.Object, error)
	watchFn func(ctx context.Context, kind string, fn func(config.Change)) error
}

var _ ObjectStore = (*memStore)(nil)

func testRegistry(t *testing.T) *config.Registry {
	t.Helper()
	reg := config.NewRegistry()
	reg.Register(tokenKind)
	sk, ok := config.Kinds.Lookup("Secret")
	if !ok {
		t.Fatal("config registers no Secret kind")
	}
	reg.Register(*sk)
	reg.Register(config.Kind{Name: "Pool", Description: "a pool of servers", Validate: func(spec json.RawMessage) error {
		var s struct {
			Servers []string `json:"servers"`
		}
		if err := config.DecodeSpec(spec, &s); err != nil {
			return err
		}
		if len(s.Servers) == 0 {
			return config.Errorf("spec.servers", "must hold at least one server")
		}
		return nil
	}})
	reg.Register(config.Kind{Name: "Policy", Description: "admins only", AdminOnly: true})
	return reg
}

func newMemStore(reg *config.Registry, now func() time.Time) *memStore {
	return &memStore{reg: reg, now: now, objs: map[string]*config.Object{}, watchers: map[int]func(config.Change){}}
}

func (s *memStore) Registry() *config.Registry { return s.reg }

func cloneObj(o *config.Object) *config.Object {
	cp := *o
	cp.Spec = bytes.Clone(o.Spec)
	if o.Metadata.Revision != nil {
		r := *o.Metadata.Revision
		cp.Metadata.Revision = &r
	}
	return &cp
}

func (s *memStore) Get(_ context.Context, kind, name string) (*config.Object, error) {
	k, ok := s.reg.Lookup(kind)
	if !ok {
		return nil, &config.FieldError{Object: kind, Field: "kind", Message: "unknown", Err: config.ErrUnknownKind}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objs[k.Name+"/"+name]
	if !ok {
		return nil, &config.NotFoundError{Object: k.Name + "/" + name}
	}
	return cloneObj(o), nil
}

func (s *memStore) List(ctx context.Context, kind string) ([]*config.Object, error) {
	if s.listFn != nil {
		return s.listFn(ctx, kind)
	}
	k, ok := s.reg.Lookup(kind)
	if !ok {
		return nil, &config.FieldError{Object: kind, Field: "kind", Message: "unknown", Err: config.ErrUnknownKind}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*config.Object
	for _, o := range s.objs {
		if o.Kind == k.Name {
			out = append(out, cloneObj(o))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *memStore) Redact(obj *config.Object) *config.Object {
	cp := cloneObj(obj)
	if k, ok := s.reg.Lookup(obj.Kind); ok && k.Redact != nil {
		cp.Spec = k.Redact(obj.Spec)
	}
	return cp
}

func (s *memStore) Apply(_ context.Context, objs []*config.Object, opts config.ApplyOptions) ([]config.Result, error) {
	if len(objs) > config.MaxBatch {
		return nil, fmt.Errorf("%d objects: %w", len(objs), config.ErrTooMany)
	}
	s.mu.Lock()
	var changes []config.Change
	results := make([]config.Result, len(objs))
	work := make([]*config.Object, len(objs))
	for i, o := range objs {
		c := cloneObj(o)
		if err := s.reg.Validate(c); err != nil {
			s.mu.Unlock()
			return nil, err
		}
		k, _ := s.reg.Lookup(c.Kind)
		id := c.Kind + "/" + c.Name
		if k.Internal && !opts.Internal {
			s.mu.Unlock()
			return nil, &config.FieldError{Object: id, Field: "kind", Message: "managed by vigil"}
		}
		cur := s.objs[id]
		if want := c.Metadata.Revision; want != nil && ((*want == 0 && cur != nil) || (*want != 0 && (cur == nil || cur.Rev() != *want))) {
			actual := uint64(0)
			if cur != nil {
				actual = cur.Rev()
			}
			s.mu.Unlock()
			return nil, &config.ConflictError{Object: id, Expected: *want, Actual: actual}
		}
		work[i] = c
	}
	if !opts.DryRun {
		for i, c := range work {
			id := c.Kind + "/" + c.Name
			cur := s.objs[id]
			s.rev++
			r := s.rev
			now := s.now().UTC()
			next := &config.Object{Kind: c.Kind, Name: c.Name, Spec: c.Spec, Metadata: config.Metadata{
				UUID: strings.ToLower(c.Kind) + "-x", Tenant: config.DefaultTenant, Revision: &r,
				Created: now, Updated: now, UpdatedBy: opts.User,
			}}
			res := config.Result{Kind: c.Kind, Name: c.Name, Action: "created", Revision: r}
			if cur != nil {
				res.Action = "updated"
				res.Previous = s.Redact(cur)
				next.Metadata.Created = cur.Metadata.Created
			}
			s.objs[id] = next
			res.Object = s.Redact(next)
			results[i] = res
			changes = append(changes, config.Change{Op: config.OpPut, Object: cloneObj(next), Revision: r, User: opts.User})
		}
	} else {
		for i, c := range work {
			results[i] = config.Result{Kind: c.Kind, Name: c.Name, Action: "created", Object: s.Redact(c)}
		}
	}
	s.mu.Unlock()
	s.notify(changes)
	return results, nil
}

func (s *memStore) Delete(_ context.Context, refs []config.Ref, opts config.DeleteOptions) ([]config.Result, error) {
	s.mu.Lock()
	results := make([]config.Result, len(refs))
	for i, ref := range refs {
		k, ok := s.reg.Lookup(ref.Kind)
		if !ok {
			s.mu.Unlock()
			return nil, &config.FieldError{Object: ref.String(), Field: "kind", Message: "unknown", Err: config.ErrUnknownKind}
		}
		if k.Internal && !opts.Internal {
			s.mu.Unlock()
			return nil, &config.FieldError{Object: ref.String(), Field: "kind", Message: "managed by vigil"}
		}
		id := k.Name + "/" + ref.Name
		cur := s.objs[id]
		if cur == nil {
			if !opts.IgnoreMissing {
				s.mu.Unlock()
				return nil, &config.NotFoundError{Object: id}
			}
			results[i] = config.Result{Kind: k.Name, Name: ref.Name, Action: "absent"}
			continue
		}
		if ref.Revision != nil && *ref.Revision != cur.Rev() {
			s.mu.Unlock()
			return nil, &config.ConflictError{Object: id, Expected: *ref.Revision, Actual: cur.Rev()}
		}
		results[i] = config.Result{Kind: k.Name, Name: ref.Name, Action: "deleted", Previous: s.Redact(cur)}
	}
	var changes []config.Change
	if !opts.DryRun {
		for _, res := range results {
			if res.Action != "deleted" {
				continue
			}
			delete(s.objs, res.Kind+"/"+res.Name)
			s.rev++
			changes = append(changes, config.Change{
				Op:     config.OpDelete,
				Object: &config.Object{Kind: res.Kind, Name: res.Name}, Revision: s.rev, User: opts.User,
			})
		}
	}
	s.mu.Unlock()
	s.notify(changes)
	return results, nil
}

// Watch behaves like config.Store.Watch: it delivers the snapshot and
// OpSynced, returns, and delivers later changes until ctx ends.
func (s *memStore) Watch(ctx context.Context, kind string, fn func(config.Change)) error {
	if s.watchFn != nil {
		return s.watchFn(ctx, kind, fn)
	}
	if _, ok := s.reg.Lookup(kind); !ok {
		return &config.FieldError{Object: kind, Field: "kind", Message: "unknown", Err: config.ErrUnknownKind}
	}
	// Register first, so no change falls between the snapshot and the
	// watch; notify waits on fnMu until the snapshot is delivered.
	s.fnMu.Lock()
	defer s.fnMu.Unlock()
	s.mu.Lock()
	id := s.nextW
	s.nextW++
	s.watchers[id] = func(c config.Change) {
		if c.Object != nil && c.Object.Kind == kind {
			fn(c)
		}
	}
	s.mu.Unlock()
	objs, err := s.List(ctx, kind)
	if err != nil {
		return err
	}
	for _, o := range objs {
		fn(config.Change{Op: config.OpPut, Object: o, Revision: o.Rev()})
	}
	fn(config.Change{Op: config.OpSynced})
	context.AfterFunc(ctx, func() {
		s.mu.Lock()
		delete(s.watchers, id)
		s.mu.Unlock()
	})
	return nil
}

func (s *memStore) notify(changes []config.Change) {
	s.mu.Lock()
	ws := make([]func(config.Change), 0, len(s.watchers))
	for _, w := range s.watchers {
		ws = append(ws, w)
	}
	s.mu.Unlock()
	s.fnMu.Lock()
	defer s.fnMu.Unlock()
	for _, c := range changes {
		for _, w := range ws {
			w(c)
		}
	}
}

// fakeBus is an EventBus whose methods are function fields.
type fakeBus struct {
	publishFn func(ctx context.Context, ev *events.Event) (events.PublishResult, error)
	listFn    func(ctx context.Context, f events.Filter) ([]events.Stored, uint64, error)
	followFn  func(ctx context.Context, f events.Filter, fn func(events.Stored) error) error
	readyFn   func() error
	rejectFn  func(ctx context.Context, start uint64, limit int) ([]events.Rejected, uint64, error)
}

func (b *fakeBus) PublishBatch(ctx context.Context, evs []*events.Event) ([]events.PublishResult, error) {
	out := make([]events.PublishResult, len(evs))
	for i, ev := range evs {
		r, err := b.Publish(ctx, ev)
		if err != nil {
			return nil, err
		}
		out[i] = r
	}
	return out, nil
}

func (b *fakeBus) ListRejected(ctx context.Context, start uint64, limit int) ([]events.Rejected, uint64, error) {
	if b.rejectFn == nil {
		return nil, 0, nil
	}
	return b.rejectFn(ctx, start, limit)
}

var _ EventBus = (*fakeBus)(nil)

func (b *fakeBus) Publish(ctx context.Context, ev *events.Event) (events.PublishResult, error) {
	if b.publishFn == nil {
		return events.PublishResult{Seq: 1}, nil
	}
	return b.publishFn(ctx, ev)
}

func (b *fakeBus) List(ctx context.Context, f events.Filter) ([]events.Stored, uint64, error) {
	if b.listFn == nil {
		return nil, 0, nil
	}
	return b.listFn(ctx, f)
}

func (b *fakeBus) Follow(ctx context.Context, f events.Filter, fn func(events.Stored) error) error {
	if b.followFn == nil {
		<-ctx.Done()
		return ctx.Err()
	}
	return b.followFn(ctx, f, fn)
}

func (b *fakeBus) Ready() error {
	if b.readyFn == nil {
		return nil
	}
	return b.readyFn()
}

// fakeRunner is a Runner whose methods are function fields. Without a
// function, Submit queues exec-1, Get answers the execution running,
// Cancel answers it cancelled, Wait answers it succeeded and List answers
// nothing.
type fakeRunner struct {
	submitFn func(ctx context.Context, req runner.RunRequest) (*runner.Execution, error)
	getFn    func(ctx context.Context, id string) (*runner.Execution, error)
	listFn   func(ctx context.Context, f runner.ExecFilter) ([]*runner.Execution, error)
	cancelFn func(ctx context.Context, id, user string) (*runner.Execution, error)
	waitFn   func(ctx context.Context, id string) (*runner.Execution, error)
}

var _ Runner = (*fakeRunner)(nil)

// testExecution returns an execution of script "backup" with id and status.
func testExecution(id, status string) *runner.Execution {
	return &runner.Execution{
		ID: id, Script: "backup", ScriptRevision: 3, Trigger: runner.TriggerManual, TriggeredBy: "t-admin",
		Attempt: 1, Status: status, Queued: time.Date(2025, 11, 25, 17, 0, 0, 0, time.UTC),
	}
}

func (f *fakeRunner) Submit(ctx context.Context, req runner.RunRequest) (*runner.Execution, error) {
	if f.submitFn != nil {
		return f.submitFn(ctx, req)
	}
	return testExecution("exec-1", runner.StatusQueued), nil
}

func (f *fakeRunner) Get(ctx context.Context, id string) (*runner.Execution, error) {
	if f.getFn != nil {
		return f.getFn(ctx, id)
	}
	return testExecution(id, runner.StatusRunning), nil
}

func (f *fakeRunner) List(ctx context.Context, filter runner.ExecFilter) ([]*runner.Execution, error) {
	if f.listFn != nil {
		return f.listFn(ctx, filter)
	}
	return nil, nil
}

func (f *fakeRunner) Cancel(ctx context.Context, id, user string) (*runner.Execution, error) {
	if f.cancelFn != nil {
		return f.cancelFn(ctx, id, user)
	}
	return testExecution(id, runner.StatusCancelled), nil
}

func (f *fakeRunner) Wait(ctx context.Context, id string) (*runner.Execution, error) {
	if f.waitFn != nil {
		return f.waitFn(ctx, id)
	}
	return testExecution(id, runner.StatusSucceeded), nil
}

// clock is an injectable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a started API behind a real HTTP server, with one token per role
// and one expired token.
type env struct {
	api    *API
	store  *memStore
	bus    *fakeBus
	runner *fakeRunner
	clock  *clock
	reg    *prometheus.Registry
	logs   *vigiltest.SyncBuffer
	srv    *httptest.Server
	tokens map[Role]string
	// expired is an admin token that expired an hour ago.
	expired string
}

func newEnv(t *testing.T, configure ...func(*Options)) *env {
	t.Helper()
	e := &env{
		clock:  &clock{t: time.Date(2025, 11, 25, 17, 0, 0, 0, time.UTC)},
		bus:    &fakeBus{},
		runner: &fakeRunner{},
		reg:    prometheus.NewRegistry(),
		logs:   &vigiltest.SyncBuffer{},
		tokens: map[Role]string{},
	}
	e.store = newMemStore(testRegistry(t), e.clock.Now)
	var objs []*config.Object
	for _, role := range Roles {
		plain, hash, err := NewToken()
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[role] = plain
		objs = append(objs, TokenObject("t-"+string(role), string(role), hash, "test", time.Time{}, ""))
	}
	plain, hash, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	e.expired = plain
	objs = append(objs, TokenObject("t-expired", "admin", hash, "test", e.clock.Now().Add(-time.Hour), ""))
	if _, err := e.store.Apply(context.Background(), objs, config.ApplyOptions{Internal: true, User: "test"}); err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Store:      e.store,
		Bus:        e.bus,
		Logger:     slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:        e.clock.Now,
		Registerer: e.reg,
		Version:    "test",
		Runner:     e.runner,
	}
	for _, c := range configure {
		c(&opts)
	}
	e.api, err = New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.api.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.api.Stop(context.Background()) })
	e.srv = httptest.NewServer(e.api.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

// do sends a request and returns the answer with its body read.
func (e *env) do(t *testing.T, method, path, token string, body any, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, out
}

// apiErr checks that body has the error shape and returns it.
func apiErr(t *testing.T, resp *http.Response, body []byte) *Error {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json; body %s", resp.Request.Method, resp.Request.URL.Path, ct, body)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("%s %s: error body is not JSON: %v: %s", resp.Request.Method, resp.Request.URL.Path, err, body)
	}
	if len(raw) != 1 || raw["error"] == nil {
		t.Fatalf("%s %s: error body %s, want exactly {\"error\": {...}}", resp.Request.Method, resp.Request.URL.Path, body)
	}
	var eb ErrorBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&eb); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	if eb.Error.Code == "" || eb.Error.Message == "" {
		t.Errorf("error body %s lacks code or message", body)
	}
	return eb.Error
}

// wantErr checks status, shape and code of an error answer.
func wantErr(t *testing.T, resp *http.Response, body []byte, status int, code Code) *Error {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("%s %s: status %d, want %d; body %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, body)
	}
	e := apiErr(t, resp, body)
	if e.Code != code {
		t.Errorf("%s %s: code %q, want %q; body %s", resp.Request.Method, resp.Request.URL.Path, e.Code, code, body)
	}
	return e
}
