package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigilhq/vigil/config"
	pysdk "github.com/vigilhq/vigil/contrib/python"
	"github.com/vigilhq/vigil/events"
)

// Stream, bucket and subjects of the runner.
const (
	RunsStream    = "VIGIL_RUNS"
	RunsPrefix    = "vigil.runs"
	ExecBucket    = "vigil_executions"
	cancelSubject = "vigil.runner.cancel"
	// donePrefix.<id> is a core NATS notice that execution id is final;
	// Wait reads the record again when it comes.
	donePrefix      = "vigil.runner.done"
	runnerConsumer  = "vigil-runner"
	DefaultPoolSize = 8
	// DefaultQueueMax and DefaultQueuePerScript bound the run queue.
	DefaultQueueMax       = 1000
	DefaultQueuePerScript = 100
	// DefaultRetention is how long execution records are kept.
	DefaultRetention = 7 * 24 * time.Hour
	// DefaultExecMaxBytes bounds the execution records; the oldest go first.
	DefaultExecMaxBytes = 2 << 30
	// DefaultTermGrace is how long a run that is stopped (timeout, cancel,
	// shutdown) has between SIGTERM and the kill of its whole cgroup.
	DefaultTermGrace = 5 * time.Second
)

// ObjectStore is what the runner reads from the object store.
type ObjectStore interface {
	Get(ctx context.Context, kind, name string) (*config.Object, error)
	Cipher() config.Cipher
}

// EventPublisher stores events; *events.Bus is one.
type EventPublisher interface {
	Publish(ctx context.Context, ev *events.Event) (events.PublishResult, error)
}

// TokenIssuer makes the short-lived API token of one execution.
type TokenIssuer interface {
	// Issue creates a token with the script role that expires after ttl and
	// returns it with a function that revokes it.
	Issue(ctx context.Context, name string, ttl time.Duration) (token string, revoke func(), err error)
}

// Options configures [New].
type Options struct {
	NC     *nats.Conn
	JS     jetstream.JetStream
	Store  ObjectStore
	Events EventPublisher
	Tokens TokenIssuer
	Logger *slog.Logger
	Now    func() time.Time

	// ID names this runner on execution records; default the host name.
	ID string
	// Exe is the vigil binary that the sandbox shim re-executes; default
	// os.Executable().
	Exe string
	// DataDir is hidden from scripts.
	DataDir string
	// RunDir holds each run's script file, the SDK and the API socket;
	// default /run/vigil-runs, else /var/tmp/vigil-runs.
	RunDir string
	// APIURL is how scripts reach the API over the network; APISocket is
	// the host path of the API's unix socket, mounted into runs without a
	// network.
	APIURL, APISocket string
	Version           string
	// PoolSize bounds the runs at once; default 8.
	PoolSize int
	// QueueMax and QueuePerScript bound the queue; defaults 1000 and 100.
	QueueMax, QueuePerScript int
	// Retention of execution records; default 7 days.
	Retention time.Duration
	// Grace is how long SIGTERM lets running scripts finish; default 10s.
	Grace time.Duration
	// TermGrace is how long one stopped run (timeout, cancel, shutdown)
	// has between its SIGTERM and the SIGKILL of all its processes;
	// default 5s.
	TermGrace time.Duration
	// PrestartShims is how many sandbox shims per network mode wait, started,
	// for their runs; default 2, negative for none.
	PrestartShims int
	// CgroupParent names the cgroup that holds the runs; default "vigil".
	CgroupParent string
	// RemoveCgroupParent removes at Stop the parent cgroup, if this runner
	// made it: set it when no other runner shares the parent.
	RemoveCgroupParent bool
	// NoWarmPool starts every run in a fresh interpreter. By default a fork
	// server per interpreter, with the SDK and common modules imported,
	// forks each run (see zygote.py); a run whose script sets PYTHON*,
	// LANG, LC_*, PATH or HOME in its env starts cold.
	NoWarmPool bool
}

// Runner takes run requests from the JetStream work queue and runs each
// ControlScript in its own sandbox, keeping a record per execution.
type Runner struct {
	opts    Options
	log     *slog.Logger
	kv      jetstream.KeyValue
	cgroups *Cgroups // nil when no cgroup hierarchy serves
	shims   *shimPool
	warm    *warmPool // nil with NoWarmPool
	sdkDir  string

	cc     jetstream.ConsumeContext
	cancel *nats.Subscription

	// scripts caches ControlScript objects when the store can be watched,
	// so that a run's dispatch reads no KV; smu guards it.
	smu     sync.Mutex
	scripts map[string]*config.Object

	mu        sync.Mutex
	running   map[string]context.CancelCauseFunc // execution id → cancel
	perScript map[string]int
	// full holds, per script ("" for the whole queue), when a run request
	// last found its queue full: until a run ends here or fullHold passes,
	// more requests are refused without a round trip to the bus.
	full map[string]time.Time
	// submitted holds the records this process queued, with their
	// revisions, until a runner here takes them: dispatch then reads no
	// KV, and the running record is written only if nothing changed it.
	submitted map[string]submittedRun
	pruned    time.Time // when submitted last lost its old entries
	stopping  bool
	wg        sync.WaitGroup
	stopOnce  sync.Once
}

// script returns the ControlScript object, from the watched cache when it
// holds the revision the run was queued with or a later one, else from
// the store.
func (r *Runner) script(ctx context.Context, name string, minRev uint64) (*config.Object, error) {
	r.smu.Lock()
	obj := r.scripts[name]
	r.smu.Unlock()
	if obj != nil && obj.Rev() >= minRev {
		return obj, nil
	}
	return r.opts.Store.Get(ctx, KindControlScript, name)
}

// ackWait is how long a run request stays with a runner without a
// heartbeat.
const ackWait = 10 * time.Second

// Cancel causes recorded on an execution.
var (
	errCancelled = errors.New("cancelled")
	errStopping  = errors.New("vigil stopped during the run")
)

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ID == "" {
		o.ID, _ = os.Hostname()
	}
	if o.Exe == "" {
		o.Exe, _ = os.Executable()
	}
	if o.RunDir == "" {
		o.RunDir = "/run/vigil-runs"
		if err := os.MkdirAll(o.RunDir, 0o755); err != nil {
			o.RunDir = "/var/tmp/vigil-runs"
		}
	}
	if o.PoolSize <= 0 {
		o.PoolSize = DefaultPoolSize
	}
	if o.QueueMax <= 0 {
		o.QueueMax = DefaultQueueMax
	}
	if o.QueuePerScript <= 0 {
		o.QueuePerScript = DefaultQueuePerScript
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.Grace <= 0 {
		o.Grace = 10 * time.Second
	}
	if o.TermGrace <= 0 {
		o.TermGrace = DefaultTermGrace
	}
	if o.PrestartShims == 0 {
		o.PrestartShims = 2
	}
	if o.CgroupParent == "" {
		o.CgroupParent = "vigil"
	}
	return o
}

// New prepares the runner: the queue stream, the executions bucket, the
// run directory and the cgroup hierarchy.
func New(ctx context.Context, opts Options) (*Runner, error) {
	opts = opts.withDefaults()
	r := &Runner{
		opts: opts, log: opts.Logger.With("component", "runner"),
		running: map[string]context.CancelCauseFunc{}, perScript: map[string]int{}, full: map[string]time.Time{},
		submitted: map[string]submittedRun{},
	}
	if _, err := opts.JS.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:                 RunsStream,
		Description:          "ControlScript run requests",
		Subjects:             []string{RunsPrefix + ".>"},
		Retention:            jetstream.WorkQueuePolicy,
		Storage:              jetstream.FileStorage,
		Discard:              jetstream.DiscardNew,
		DiscardNewPerSubject: true,
		MaxMsgs:              int64(opts.QueueMax),
		MaxMsgsPerSubject:    int64(opts.QueuePerScript),
		MaxAge:               24 * time.Hour,
		Duplicates:           2 * time.Minute,
	}); err != nil {
		return nil, fmt.Errorf("runner: runs stream: %w", err)
	}
	kv, err := opts.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:       ExecBucket,
		Description:  "ControlScript executions",
		History:      1,
		TTL:          opts.Retention,
		MaxValueSize: 8 << 20,
		Storage:      jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("runner: executions bucket: %w", err)
	}
	// Bounded in bytes too; past the bound the oldest records go first.
	st, err := opts.JS.Stream(ctx, "KV_"+ExecBucket)
	if err != nil {
		return nil, fmt.Errorf("runner: executions bucket: %w", err)
	}
	if cfg := st.CachedInfo().Config; cfg.MaxBytes != DefaultExecMaxBytes || cfg.Discard != jetstream.DiscardOld {
		cfg.MaxBytes, cfg.Discard = DefaultExecMaxBytes, jetstream.DiscardOld
		if _, err := opts.JS.UpdateStream(ctx, cfg); err != nil {
			return nil, fmt.Errorf("runner: bound the executions bucket: %w", err)
		}
	}
	r.kv = kv
	if err := os.MkdirAll(opts.RunDir, 0o755); err != nil {
		return nil, fmt.Errorf("runner: run dir: %w", err)
	}
	if r.sdkDir, err = installSDK(opts.RunDir, r.log); err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	cg, err := DetectCgroups(CgroupOptions{Parent: opts.CgroupParent})
	if err != nil {
		r.log.Warn("no cgroup hierarchy serves; limits fall back to rlimits", "err", err)
	} else {
		r.cgroups = cg
		if n, err := cg.Sweep(); err != nil {
			r.log.Warn("sweep old run cgroups", "err", err)
		} else if n > 0 {
			r.log.Info("removed cgroups of old runs", "count", n)
		}
	}
	r.shims = newShimPool(opts.Exe, opts.PrestartShims, r.log)
	if !opts.NoWarmPool {
		r.warm = newWarmPool(opts.Exe, r.sdkDir, opts.APISocket, hidden(opts.DataDir), r.cgroups, warmParked, r.log)
		if interp := DefaultInterpreter(); interp != "" {
			r.warm.warmUp(interp)
		}
	}
	return r, nil
}

// Start recovers runs that this runner left running and begins taking
// run requests.
func (r *Runner) Start(ctx context.Context) error {
	if err := r.recover(ctx); err != nil {
		return err
	}
	if w, ok := r.opts.Store.(interface {
		Watch(ctx context.Context, kind string, fn func(config.Change)) error
	}); ok {
		r.scripts = map[string]*config.Object{}
		err := w.Watch(ctx, KindControlScript, func(c config.Change) {
			r.smu.Lock()
			defer r.smu.Unlock()
			switch c.Op {
			case config.OpPut:
				r.scripts[c.Object.Name] = c.Object
			case config.OpDelete:
				delete(r.scripts, c.Object.Name)
			}
		})
		if err != nil {
			return fmt.Errorf("runner: watch ControlScripts: %w", err)
		}
	}
	sub, err := r.opts.NC.Subscribe(cancelSubject, func(m *nats.Msg) {
		r.mu.Lock()
		cancel := r.running[string(m.Data)]
		r.mu.Unlock()
		if cancel != nil {
			cancel(errCancelled)
		}
	})
	if err != nil {
		return fmt.Errorf("runner: cancel subscription: %w", err)
	}
	r.cancel = sub
	cons, err := r.opts.JS.CreateOrUpdateConsumer(ctx, RunsStream, jetstream.ConsumerConfig{
		Durable:   runnerConsumer,
		AckPolicy: jetstream.AckExplicitPolicy,
		// A running request is kept alive by heartbeats; one whose runner
		// died comes back after AckWait. The headroom above the pool lets
		// new requests flow while a dead runner's requests wait for that.
		AckWait:       ackWait,
		MaxAckPending: 2 * r.opts.PoolSize,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("runner: consumer: %w", err)
	}
	r.cc, err = cons.Consume(r.dispatch, jetstream.PullMaxMessages(r.opts.PoolSize))
	if err != nil {
		return fmt.Errorf("runner: consume: %w", err)
	}
	return nil
}

// Stop stops taking requests, lets running scripts finish for the grace
// period, then kills them and records them as killed. It is idempotent.
func (r *Runner) Stop(ctx context.Context) {
	r.stopOnce.Do(func() {
		r.mu.Lock()
		r.stopping = true
		r.mu.Unlock()
		if r.cc != nil {
			r.cc.Stop()
		}
		if r.cancel != nil {
			_ = r.cancel.Unsubscribe()
		}
		if r.cgroups != nil && r.opts.RemoveCgroupParent {
			defer func() { // after the pools below have removed their runs' cgroups
				if err := r.cgroups.Close(); err != nil {
					r.log.Warn("remove the parent cgroup", "err", err)
				}
			}()
		}
		defer r.shims.close()
		if r.warm != nil {
			defer r.warm.close()
		}
		done := make(chan struct{})
		go func() { r.wg.Wait(); close(done) }()
		grace := time.NewTimer(r.opts.Grace)
		defer grace.Stop()
		select {
		case <-done:
			return
		case <-grace.C:
		case <-ctx.Done():
		}
		r.mu.Lock()
		for _, cancel := range r.running {
			cancel(errStopping)
		}
		r.mu.Unlock()
		<-done
	})
}

// Submit records a queued execution and puts its request on the queue.
func (r *Runner) Submit(ctx context.Context, req RunRequest) (*Execution, error) {
	if req.Trigger == "" {
		req.Trigger = TriggerManual
	}
	// A manual run reads the script from the store, so that one asked for
	// right after an apply runs what was applied; alerts and schedules
	// take the watched copy, which is at most a moment behind.
	var obj *config.Object
	var err error
	if req.Trigger == TriggerManual {
		obj, err = r.opts.Store.Get(ctx, KindControlScript, req.Script)
	} else {
		obj, err = r.script(ctx, req.Script, 0)
	}
	if err != nil {
		return nil, err
	}
	if req.ID == "" && r.knownFull(req.Script) {
		// A request with an id is looked up first: it may have been
		// queued already.
		return nil, fmt.Errorf("%s: %w", req.Script, ErrQueueFull)
	}
	id := "exec-" + uuid.Must(uuid.NewV7()).String()
	if req.ID != "" {
		if u, ok := strings.CutPrefix(req.ID, "exec-"); !ok || uuid.Validate(u) != nil {
			return nil, config.Errorf("id", "%q is not an execution id (exec- and a UUID)", req.ID)
		}
		id = req.ID
	}
	ex := &Execution{
		ID: id, Script: obj.Name, ScriptRevision: obj.Rev(),
		Trigger: req.Trigger, TriggeredBy: req.User, Alert: req.Alert, Attempt: 1,
		Status: StatusQueued, Queued: r.opts.Now().UTC(),
	}
	if req.ID == "" {
		return ex, r.enqueue(ctx, ex)
	}
	// A given id runs once: the record is created only if it is new (one
	// round trip), and an existing one is returned as it is.
	data, err := json.Marshal(ex)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", ex.ID, err)
	}
	rev, err := r.kv.Create(ctx, ex.ID, data)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return r.Get(ctx, ex.ID)
		}
		return nil, fmt.Errorf("save %s: %w", ex.ID, err)
	}
	return ex, r.queueSubmitted(ctx, ex, rev)
}

// submittedRun is a record as Submit saved it, at revision rev.
type submittedRun struct {
	ex  Execution
	rev uint64
	at  time.Time
}

// submittedKeep bounds how long a submitted record waits here for a
// runner of this process; another process's runner may take it.
const submittedKeep = time.Minute

// queueSubmitted queues a record that Submit saved at revision rev, and
// remembers it for this process's dispatch.
func (r *Runner) queueSubmitted(ctx context.Context, ex *Execution, rev uint64) error {
	now := time.Now()
	r.mu.Lock()
	if now.Sub(r.pruned) > submittedKeep {
		r.pruned = now
		for id, s := range r.submitted {
			if now.Sub(s.at) > submittedKeep {
				delete(r.submitted, id)
			}
		}
	}
	r.submitted[ex.ID] = submittedRun{ex: *ex, rev: rev, at: now}
	r.mu.Unlock()
	err := r.queue(ctx, ex)
	if err != nil {
		r.mu.Lock()
		delete(r.submitted, ex.ID)
		r.mu.Unlock()
	}
	return err
}

// submittedRecord returns a copy of the record Submit saved for id, and
// its revision, if it is here.
func (r *Runner) submittedRecord(id string) (*Execution, uint64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.submitted[id]
	if !ok {
		return nil, 0, false
	}
	ex := s.ex
	return &ex, s.rev, true
}

// enqueue saves a new queued record and queues it.
func (r *Runner) enqueue(ctx context.Context, ex *Execution) error {
	rev, err := r.update(ctx, ex, 0)
	if err != nil {
		return err
	}
	return r.queueSubmitted(ctx, ex, rev)
}

// queue puts a saved execution's run request on the runs stream; a full
// queue marks it rejected.
func (r *Runner) queue(ctx context.Context, ex *Execution) error {
	_, err := r.opts.JS.Publish(ctx, RunsPrefix+"."+ex.Script, []byte(ex.ID), jetstream.WithMsgID(ex.ID))
	if err != nil {
		ex.Status, ex.Reason = StatusRejected, "the run queue is full"
		now := r.opts.Now().UTC()
		ex.Finished = &now
		_ = r.save(context.WithoutCancel(ctx), ex)
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && strings.Contains(strings.ToLower(apiErr.Description), "maximum") {
			key := ex.Script
			if !strings.Contains(strings.ToLower(apiErr.Description), "per subject") {
				key = "" // the whole queue, not this script's
			}
			r.mu.Lock()
			r.full[key] = r.opts.Now()
			r.mu.Unlock()
			return fmt.Errorf("%s: %w", ex.Script, ErrQueueFull)
		}
		return fmt.Errorf("queue %s: %w", ex.ID, err)
	}
	return nil
}

// fullHold is how long a full queue is taken to stay full when no run
// ends in this process (another runner may end one).
const fullHold = 50 * time.Millisecond

// knownFull reports whether script's queue, or the whole queue, was found
// full since the last run ended here, less than fullHold ago.
func (r *Runner) knownFull(script string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.opts.Now()
	for _, k := range []string{script, ""} {
		if t, ok := r.full[k]; ok {
			if now.Sub(t) < fullHold && !now.Before(t) {
				return true
			}
			delete(r.full, k)
		}
	}
	return false
}

// Get returns an execution.
func (r *Runner) Get(ctx context.Context, id string) (*Execution, error) {
	ex, _, err := r.getRev(ctx, id)
	return ex, err
}

// getRev returns an execution and its record's revision.
func (r *Runner) getRev(ctx context.Context, id string) (*Execution, uint64, error) {
	e, err := r.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return nil, 0, fmt.Errorf("%s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", id, err)
	}
	var ex Execution
	if err := json.Unmarshal(e.Value(), &ex); err != nil {
		return nil, 0, fmt.Errorf("decode %s: %w", id, err)
	}
	return &ex, e.Revision(), nil
}

// List returns executions matching f, newest first.
func (r *Runner) List(ctx context.Context, f ExecFilter) ([]*Execution, error) {
	w, err := r.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list executions: %w", err)
	}
	defer w.Stop() //nolint:errcheck // a read-only watch
	var out []*Execution
	for e := range w.Updates() {
		if e == nil {
			break
		}
		var ex Execution
		if json.Unmarshal(e.Value(), &ex) != nil {
			continue
		}
		if (f.Script == "" || ex.Script == f.Script) && (f.Status == "" || ex.Status == f.Status) {
			out = append(out, &ex)
		}
	}
	// Ids are UUIDv7: newest first is descending id order.
	sortExecutions(out)
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// Cancel ends a queued or running execution.
func (r *Runner) Cancel(ctx context.Context, id, user string) (*Execution, error) {
	ex, rev, err := r.getRev(ctx, id)
	for tries := 1; err == nil && ex.Status == StatusQueued; tries++ {
		now := r.opts.Now().UTC()
		ex.Status, ex.Reason, ex.Finished = StatusCancelled, "cancelled by "+user+" while queued", &now
		// Only if it is still queued: a runner may have just started it,
		// and then it is cancelled as a running one.
		_, err = r.update(ctx, ex, rev)
		if err == nil {
			return ex, nil
		}
		if !errors.Is(err, errRecordChanged) || tries == 5 {
			return nil, err
		}
		ex, rev, err = r.getRev(ctx, id)
	}
	if err != nil {
		return nil, err
	}
	if Final(ex.Status) {
		return ex, fmt.Errorf("%s is %s: %w", id, ex.Status, ErrFinal)
	}
	if err := r.opts.NC.Publish(cancelSubject, []byte(id)); err != nil {
		return nil, fmt.Errorf("cancel %s: %w", id, err)
	}
	return r.Wait(ctx, id)
}

// Wait returns the execution once it is final, or when ctx ends.
func (r *Runner) Wait(ctx context.Context, id string) (*Execution, error) {
	// Subscribe before reading, so a run that ends in between is not
	// missed; a lost notice (its runner died) costs at most waitPoll.
	done := make(chan *nats.Msg, 1)
	sub, err := r.opts.NC.ChanSubscribe(donePrefix+"."+id, done)
	if err != nil {
		return nil, fmt.Errorf("wait %s: %w", id, err)
	}
	defer sub.Unsubscribe() //nolint:errcheck // a core NATS subscription
	for {
		ex, err := r.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if Final(ex.Status) {
			return ex, nil
		}
		t := time.NewTimer(waitPoll)
		select {
		case <-done:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		t.Stop()
	}
}

// waitPoll bounds how long Wait trusts the done notice alone.
const waitPoll = time.Second

func (r *Runner) save(ctx context.Context, ex *Execution) error {
	_, err := r.update(ctx, ex, 0)
	return err
}

// update saves ex if its record is still at revision rev (any revision
// when rev is 0); errRecordChanged says it was not.
func (r *Runner) update(ctx context.Context, ex *Execution, rev uint64) (uint64, error) {
	data, err := json.Marshal(ex)
	if err != nil {
		return 0, fmt.Errorf("encode %s: %w", ex.ID, err)
	}
	if rev == 0 {
		rev, err = r.kv.Put(ctx, ex.ID, data)
	} else {
		rev, err = r.kv.Update(ctx, ex.ID, data, rev)
		if events.KVConflict(err) {
			return 0, fmt.Errorf("save %s: %w", ex.ID, errRecordChanged)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("save %s: %w", ex.ID, err)
	}
	if Final(ex.Status) {
		_ = r.opts.NC.Publish(donePrefix+"."+ex.ID, nil) // a hint: Wait polls too
	}
	return rev, nil
}

// errRecordChanged: an execution record changed since it was read.
var errRecordChanged = errors.New("the record changed meanwhile")

// recover ends the runs this runner had in progress when it stopped.
func (r *Runner) recover(ctx context.Context) error {
	list, err := r.List(ctx, ExecFilter{Status: StatusRunning})
	if err != nil {
		return err
	}
	for _, ex := range list {
		if ex.Runner != r.opts.ID {
			continue
		}
		r.finishOrphan(ctx, ex, "vigil stopped while the script ran")
	}
	return nil
}

// finishOrphan records a run that lost its runner as killed and retries it
// when its script says so.
func (r *Runner) finishOrphan(ctx context.Context, ex *Execution, reason string) {
	now := r.opts.Now().UTC()
	ex.Status, ex.Reason, ex.Finished = StatusKilled, reason, &now
	if err := r.save(ctx, ex); err != nil {
		r.log.Error("record orphaned run", "id", ex.ID, "err", err)
		return
	}
	r.log.Warn("run ended without its runner", "id", ex.ID, "script", ex.Script, "reason", reason)
	r.maybeRetry(ctx, ex)
}

// dispatch takes one run request off the queue.
func (r *Runner) dispatch(msg jetstream.Msg) {
	id := string(msg.Data())
	ctx := context.Background()
	ex, rev, ok := r.submittedRecord(id)
	if !ok {
		var err error
		if ex, rev, err = r.getRev(ctx, id); err != nil {
			r.log.Error("run request without a record", "id", id, "err", err)
			_ = msg.Ack()
			return
		}
	}
	switch ex.Status {
	case StatusQueued:
		if ex.NotBefore != nil {
			if wait := ex.NotBefore.Sub(r.opts.Now()); wait > 0 {
				_ = msg.NakWithDelay(min(wait, ackWait))
				return
			}
		}
	case StatusRunning:
		// Delivered again: the runner that had it is gone.
		if ex.Runner == r.opts.ID {
			r.mu.Lock()
			_, mine := r.running[id]
			r.mu.Unlock()
			if mine {
				_ = msg.InProgress()
				return
			}
		}
		r.finishOrphan(ctx, ex, "its runner stopped while the script ran")
		_ = msg.Ack()
		return
	default: // final: cancelled while queued, or already recorded
		_ = msg.Ack()
		return
	}
	obj, err := r.script(ctx, ex.Script, ex.ScriptRevision)
	var spec *ControlScriptSpec
	if err == nil {
		spec, err = DecodeControlScript(obj.Spec)
	}
	if err != nil {
		if r.reject(ctx, ex, rev, fmt.Sprintf("script %s: %v", ex.Script, err)) {
			_ = msg.Ack()
		} else {
			_ = msg.Nak() // decided again from the record
		}
		return
	}
	full := spec.WithDefaults()
	r.mu.Lock()
	if r.stopping {
		r.mu.Unlock()
		_ = msg.Nak()
		return
	}
	if len(r.running) >= r.opts.PoolSize || (full.Concurrency > 0 && r.perScript[ex.Script] >= full.Concurrency) {
		r.mu.Unlock()
		_ = msg.NakWithDelay(200 * time.Millisecond)
		return
	}
	runCtx, cancel := context.WithCancelCause(context.Background())
	delete(r.submitted, id) // from now on, the record tells
	r.running[id] = cancel
	r.perScript[ex.Script]++
	r.wg.Add(1)
	r.mu.Unlock()

	go func() {
		defer r.wg.Done()
		defer func() {
			r.mu.Lock()
			delete(r.running, id)
			r.perScript[ex.Script]--
			r.mu.Unlock()
			cancel(nil)
		}()
		stopBeat := events.KeepInProgress(msg, ackWait/3)
		started := r.run(runCtx, ex, rev, obj, full)
		stopBeat()
		if !started {
			// Its record changed since it was read (cancelled, say): the
			// request comes back and is decided again from the record.
			_ = msg.Nak()
			return
		}
		_ = msg.Ack()
		// Its place in the queue is free.
		r.mu.Lock()
		delete(r.full, ex.Script)
		delete(r.full, "")
		r.mu.Unlock()
		r.maybeRetry(context.Background(), ex)
	}()
}

// reject records a queued run, read at revision rev, as rejected; false
// when the record changed meanwhile (and the run is not rejected).
func (r *Runner) reject(ctx context.Context, ex *Execution, rev uint64, reason string) bool {
	now := r.opts.Now().UTC()
	ex.Status, ex.Reason, ex.Finished = StatusRejected, reason, &now
	r.mu.Lock()
	delete(r.submitted, ex.ID)
	r.mu.Unlock()
	if _, err := r.update(ctx, ex, rev); errors.Is(err, errRecordChanged) {
		return false
	} else if err != nil {
		r.log.Error("record rejected run", "id", ex.ID, "err", err)
	}
	r.publishResult(ctx, ex)
	return true
}

// maybeRetry queues the next attempt of a failed or timed-out run, or of a
// run that lost its runner, when the script has retries left.
func (r *Runner) maybeRetry(ctx context.Context, ex *Execution) {
	switch ex.Status {
	case StatusFailed, StatusTimeout, StatusKilled:
	default:
		return
	}
	if ex.Reason == errCancelled.Error() {
		return
	}
	obj, err := r.opts.Store.Get(ctx, KindControlScript, ex.Script)
	if err != nil {
		return
	}
	spec, err := DecodeControlScript(obj.Spec)
	if err != nil || spec.Retry == nil || ex.Attempt > spec.Retry.Count {
		return
	}
	full := spec.WithDefaults()
	backoff := full.Retry.Backoff.D() << (ex.Attempt - 1)
	backoff = min(backoff, 10*time.Minute)
	first := ex.RetryOf
	if first == "" {
		first = ex.ID
	}
	next := &Execution{
		ID: "exec-" + uuid.Must(uuid.NewV7()).String(), Script: ex.Script, ScriptRevision: obj.Rev(),
		Trigger: ex.Trigger, TriggeredBy: ex.TriggeredBy, Alert: ex.Alert, Attempt: ex.Attempt + 1,
		RetryOf: first, Status: StatusQueued, Queued: r.opts.Now().UTC(),
	}
	// Queued now, run after the backoff: the retry survives a crash.
	notBefore := next.Queued.Add(backoff)
	next.NotBefore = &notBefore
	if err := r.enqueue(ctx, next); err != nil {
		r.log.Error("queue retry", "id", next.ID, "retry_of", first, "err", err)
	}
}

// publishResult publishes CONTROLSCRIPT_SUCCEEDED or _FAILED.
func (r *Runner) publishResult(ctx context.Context, ex *Execution) {
	if r.opts.Events == nil {
		return
	}
	id := "CONTROLSCRIPT_FAILED"
	if ex.Status == StatusSucceeded {
		id = "CONTROLSCRIPT_SUCCEEDED"
	}
	exit := 0
	if ex.ExitCode != nil {
		exit = *ex.ExitCode
	}
	details := map[string]any{
		"execution_id": ex.ID, "status": ex.Status, "exitcode": exit, "reason": ex.Reason,
		"stdout": tail(ex.Stdout, 4096), "stderr": tail(ex.Stderr, 4096), "trigger": ex.Trigger,
	}
	ev, err := events.New(id, "controlscript", ex.Script, details, "/vigil/runner", r.opts.Now())
	if err != nil {
		r.log.Error("build execution event", "id", ex.ID, "err", err)
		return
	}
	ev.ID = ex.ID + "-result"
	if _, err := r.opts.Events.Publish(ctx, ev); err != nil {
		r.log.Error("publish execution event", "id", ex.ID, "err", err)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// installSDK writes the Python SDK where every run can import it, then
// compiles its bytecode in the background: runs do not write bytecode
// (PYTHONDONTWRITEBYTECODE), so without it every import would compile.
func installSDK(runDir string, log *slog.Logger) (string, error) {
	dir := filepath.Join(runDir, "sdk")
	if err := pysdk.Install(dir); err != nil {
		return "", fmt.Errorf("install sdk: %w", err)
	}
	go func() {
		out, err := exec.Command(DefaultInterpreter(), "-m", "compileall", "-q", dir).CombinedOutput()
		if err != nil {
			log.Warn("compile the sdk", "err", err, "output", string(out))
		}
	}()
	return dir, nil
}
