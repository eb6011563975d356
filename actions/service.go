package actions

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/events"
	"github.com/vigilhq/vigil/runner"
)

// Streams and consumers of the pipeline.
const (
	// ActionsStream is the work queue of action requests.
	ActionsStream = "VIGIL_ACTIONS"
	ActionsPrefix = "vigil.actions"
	// DeadLetterStream keeps the action requests that could not be
	// delivered, with the last error, for listing and replay.
	DeadLetterStream = "VIGIL_DEADLETTERS"
	DeadLetterPrefix = "vigil.deadletter"
	// RulesConsumer is the durable consumer of the events stream that the
	// engines share; ActionsConsumer the one of the actions stream.
	RulesConsumer   = "vigil-rules"
	ActionsConsumer = "vigil-actions"
)

// Defaults of the pipeline.
const (
	DefaultDeadLetterMaxAge = 30 * 24 * time.Hour
	DefaultWorkers          = 8
	DefaultDeliveries       = 64
	// MaxQueuedActions bounds the actions stream; beyond it, decisions
	// wait in the outbox.
	MaxQueuedActions = 100_000
	// actionsDuplicates is how long the actions stream drops a repeated
	// request key.
	actionsDuplicates = 10 * time.Minute
	// eventsAckWait and actionsAckWait are how long a consumer waits for
	// an engine or a delivery before it hands the message to another.
	eventsAckWait  = 10 * time.Second
	actionsAckWait = 15 * time.Second
	// outboxGrace is how long an outbox entry may wait for the engine that
	// wrote it before a sweep moves it to the actions stream.
	outboxGrace = 5 * time.Second
)

// ObjectStore is what the pipeline needs from config.Store.
type ObjectStore interface {
	Get(ctx context.Context, kind, name string) (*config.Object, error)
	Watch(ctx context.Context, kind string, fn func(config.Change)) error
	Cipher() config.Cipher
}

// ServiceOptions configures [NewService]. JS and Store are required.
type ServiceOptions struct {
	JS    jetstream.JetStream
	Store ObjectStore
	// Events publishes the events of publish_event; Scripts runs
	// ControlScripts. Without them those actions fail (and are retried).
	Events  Publisher
	Scripts Scripts
	// Autoscale takes the alerts of ActionGroups with autoscale: true;
	// without it those actions fail (and are retried).
	Autoscale Autoscaler
	Logger    *slog.Logger
	Now       func() time.Time
	// Replicas of the streams and the bucket on a cluster; default 1.
	Replicas int
	// Workers process matches in parallel (a group always on the same
	// one); Deliveries bounds the actions delivered at once.
	Workers, Deliveries int
	// HTTP sends webhooks and Slack messages; default a client that does
	// not follow redirects.
	HTTP *http.Client
	// TLS configures syslog over TLS and SMTP's STARTTLS.
	TLS     *tls.Config
	Version string
	// Tick is how often once_after groups are checked; default 1s.
	// Expired alerts are removed every 60 ticks.
	Tick time.Duration
	// OnEventDecided, when set, is called once every AlertConfig an event
	// matched has decided (at once when it matched none), with the time
	// the event was received and the number of matches.
	OnEventDecided func(received time.Time, matches int)
	// Registerer receives the pipeline's metrics; nil registers none.
	Registerer prometheus.Registerer
	// OnDecision, when set, is called after each decision is saved, with
	// its event and the time the event was received.
	OnDecision func(d *Decision, ev *events.Event, received time.Time)
}

// Service runs the rules engine on the events stream and delivers the
// actions it decides: match → silence → window or threshold → throttle →
// alert → outbox → actions stream → delivery with retries → dead letters.
type Service struct {
	opts    ServiceOptions
	log     *slog.Logger
	store   *KVStore
	cache   *CachedStore
	engine  *Engine
	deliver Deliverer
	dead    jetstream.Stream

	mu       sync.Mutex
	compiled map[string]*Rule
	// rulesSynced is set once the stored AlertConfigs are loaded.
	rulesSynced bool
	groups      map[string]*ActionGroupSpec
	sils        map[string]*Silence
	// failLog and failCount pace the log of failing rules.
	failLog   map[string]time.Time
	failCount map[string]int

	handled, delivered atomic.Int64
	metrics            *serviceMetrics
	seed               maphash.Seed

	cancel context.CancelFunc
	wg     sync.WaitGroup
	flush  chan queued
}

// NewService opens the state bucket and the pipeline's streams.
func NewService(ctx context.Context, opts ServiceOptions) (*Service, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.Deliveries <= 0 {
		opts.Deliveries = DefaultDeliveries
	}
	if opts.Tick <= 0 {
		opts.Tick = time.Second
	}
	if opts.HTTP == nil {
		opts.HTTP = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	replicas := max(opts.Replicas, 1)
	s := &Service{
		opts: opts, log: opts.Logger.With("component", "rules"),
		failLog: map[string]time.Time{}, failCount: map[string]int{},
		compiled: map[string]*Rule{}, groups: map[string]*ActionGroupSpec{}, sils: map[string]*Silence{},
		seed: maphash.MakeSeed(), flush: make(chan queued, 1024),
	}
	var err error
	if s.metrics, err = newServiceMetrics(opts.Registerer); err != nil {
		return nil, err
	}
	if s.store, err = OpenKVStore(ctx, opts.JS, replicas); err != nil {
		return nil, err
	}
	if _, err = opts.JS.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        ActionsStream,
		Description: "action requests of alerts, waiting for delivery",
		Subjects:    []string{ActionsPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Retention:   jetstream.WorkQueuePolicy,
		Discard:     jetstream.DiscardNew,
		MaxMsgs:     MaxQueuedActions,
		MaxMsgSize:  4 << 20,
		Duplicates:  actionsDuplicates,
	}); err != nil {
		return nil, fmt.Errorf("stream %s: %w", ActionsStream, err)
	}
	if s.dead, err = opts.JS.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        DeadLetterStream,
		Description: "action requests that could not be delivered, with the last error",
		Subjects:    []string{DeadLetterPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      DefaultDeadLetterMaxAge,
		MaxBytes:    256 << 20,
		AllowDirect: true,
	}); err != nil {
		return nil, fmt.Errorf("stream %s: %w", DeadLetterStream, err)
	}
	s.cache = NewCachedStore(s.store, DefaultCachedStates)
	s.engine = &Engine{
		Now: opts.Now, Store: s.cache,
		NewID: func() string { return "alert-" + uuid.Must(uuid.NewV7()).String() },
		Plan:  s.plan,
	}
	s.deliver = Deliverer{
		HTTP: opts.HTTP, Scripts: opts.Scripts, Events: opts.Events, Autoscale: opts.Autoscale, Secrets: s.secret, TLS: opts.TLS,
		Now: opts.Now, UserAgent: "vigil/" + opts.Version,
	}
	return s, nil
}

// Engine returns the rules engine.
func (s *Service) Engine() *Engine { return s.engine }

// Handled counts the event matches this instance decided.
func (s *Service) Handled() int64 { return s.handled.Load() }

// Delivered counts the actions this instance delivered.
func (s *Service) Delivered() int64 { return s.delivered.Load() }

// Start follows the AlertConfigs, ActionGroups and Silences, and once they
// are loaded consumes the events and the actions.
func (s *Service) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	if err := s.watchConfig(ctx); err != nil {
		cancel()
		return err
	}
	rules, err := s.opts.JS.CreateOrUpdateConsumer(ctx, events.EventsStream, jetstream.ConsumerConfig{
		Durable:       RulesConsumer,
		Description:   "rules engines: events to alerts",
		FilterSubject: events.JournalPrefix + ".>",
		// A new consumer starts with the events that come after it; a
		// durable one resumes where the engines left off.
		DeliverPolicy: jetstream.DeliverNewPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		// Deciding takes milliseconds: what an engine that died held comes
		// back to the others (or to it, restarted) this soon.
		AckWait:       eventsAckWait,
		MaxAckPending: 20_000,
		MaxDeliver:    -1,
	})
	if err != nil {
		cancel()
		return fmt.Errorf("consumer %s: %w", RulesConsumer, err)
	}
	acts, err := s.opts.JS.CreateOrUpdateConsumer(ctx, ActionsStream, jetstream.ConsumerConfig{
		Durable:     ActionsConsumer,
		Description: "action delivery",
		AckPolicy:   jetstream.AckExplicitPolicy,
		// A delivery in progress is kept alive by heartbeats.
		AckWait:       actionsAckWait,
		MaxAckPending: 1000,
		MaxDeliver:    -1,
	})
	if err != nil {
		cancel()
		return fmt.Errorf("consumer %s: %w", ActionsConsumer, err)
	}
	work := make([]chan job, s.opts.Workers)
	for i := range work {
		work[i] = make(chan job, 256)
		s.wg.Go(func() { s.work(work[i]) })
	}
	s.wg.Go(func() { s.consumeEvents(ctx, rules, work) })
	s.wg.Go(func() { s.consumeActions(ctx, acts) })
	s.wg.Go(func() { s.flusher(ctx) })
	s.wg.Go(func() { s.sweeper(ctx) })
	s.wg.Go(func() { s.ticker(ctx) })
	return nil
}

// Stop stops consuming and waits for the work in hand.
func (s *Service) Stop() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
}

// watchConfig follows the three kinds and returns once each is loaded.
func (s *Service) watchConfig(ctx context.Context) error {
	synced := make(chan string, 3)
	watch := func(kind string, apply func(config.Change)) error {
		once := sync.Once{}
		return s.opts.Store.Watch(ctx, kind, func(c config.Change) {
			if c.Op == config.OpSynced {
				once.Do(func() {
					if kind == KindAlertConfig {
						s.mu.Lock()
						s.rulesSynced = true
						s.setRules()
						s.mu.Unlock()
					}
					synced <- kind
				})
				return
			}
			apply(c)
		})
	}
	if err := watch(KindAlertConfig, s.applyAlertConfig); err != nil {
		return err
	}
	if err := watch(KindActionGroup, s.applyActionGroup); err != nil {
		return err
	}
	if err := watch(KindSilence, s.applySilence); err != nil {
		return err
	}
	for range 3 {
		select {
		case <-synced:
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(30 * time.Second):
			return errors.New("rules: the stored AlertConfigs, ActionGroups and Silences did not load within 30s")
		}
	}
	return nil
}

func (s *Service) applyAlertConfig(c config.Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := c.Object.Name
	delete(s.compiled, name)
	if c.Op != config.OpDelete {
		spec, err := DecodeAlertConfig(c.Object.Spec)
		if err != nil {
			s.log.Error("stored AlertConfig is invalid; it is ignored", "name", name, "err", err)
		} else if r, err := CompileRule(name, spec); err != nil {
			s.log.Error("AlertConfig does not compile; it is ignored", "name", name, "err", err)
		} else {
			s.compiled[name] = r
		}
	}
	if s.rulesSynced {
		s.setRules()
	}
}

// setRules hands the compiled rules to the engine; s.mu is held. While
// the stored AlertConfigs load, it waits for the last.
func (s *Service) setRules() {
	rules := make([]*Rule, 0, len(s.compiled))
	for _, r := range s.compiled {
		rules = append(rules, r)
	}
	s.engine.SetRules(rules)
}

func (s *Service) applyActionGroup(c config.Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := c.Object.Name
	if c.Op == config.OpDelete {
		delete(s.groups, name)
		return
	}
	spec, err := DecodeActionGroup(c.Object.Spec)
	if err != nil {
		s.log.Error("stored ActionGroup is invalid; it is ignored", "name", name, "err", err)
		delete(s.groups, name)
		return
	}
	s.groups[name] = spec
}

func (s *Service) applySilence(c config.Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := c.Object.Name
	if c.Op == config.OpDelete {
		delete(s.sils, name)
	} else {
		sil, err := CompileSilence(name, c.Object.Spec)
		if err != nil {
			s.log.Error("stored Silence is invalid; it is ignored", "name", name, "err", err)
			delete(s.sils, name)
		} else {
			s.sils[name] = sil
		}
	}
	list := make([]*Silence, 0, len(s.sils))
	for _, sil := range s.sils {
		list = append(list, sil)
	}
	s.engine.SetSilences(list)
}

func (s *Service) group(name string) *ActionGroupSpec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.groups[name]
}

// plan is the engine's Plan: the requests of the rule's ActionGroup.
func (s *Service) plan(r *Rule, d *Decision) ([]Outbound, []ActionOutcome, error) {
	return PlanActions(r, d, r.Spec.ActionGroup, s.group(r.Spec.ActionGroup), s.opts.Now().UTC())
}

// secret opens one key of a Secret; errors name the Secret.
func (s *Service) secret(ctx context.Context, ref SecretRef) (string, error) {
	open, err := config.ReadSecret(ctx, s.opts.Store, ref.Name)
	if err != nil {
		return "", err
	}
	v, ok := open[ref.Key]
	if !ok {
		return "", fmt.Errorf("secret %s has no key %q", ref.Name, ref.Key)
	}
	return v.Reveal(), nil
}

// job is one event matched by one rule; tracker acknowledges the event
// once all its jobs are done.
type job struct {
	r        *Rule
	m        Match
	ev       *events.Event
	t        *tracker
	received time.Time
}

type tracker struct {
	msg      jetstream.Msg
	n        atomic.Int32
	failed   atomic.Bool
	received time.Time
	// decided, when set, hears that the event is fully decided.
	decided func(received time.Time, matches int)
	matches int
}

func (t *tracker) done(err error) {
	if err != nil {
		t.failed.Store(true)
	}
	if t.n.Add(-1) != 0 {
		return
	}
	if t.failed.Load() {
		_ = t.msg.NakWithDelay(time.Second)
		return
	}
	_ = t.msg.Ack()
	if t.decided != nil {
		t.decided(t.received, t.matches)
	}
}

// consumeEvents matches each event against the rules of its id and hands
// the matches to the workers, a group always to the same one so that its
// events are decided in order.
func (s *Service) consumeEvents(ctx context.Context, cons jetstream.Consumer, work []chan job) {
	defer func() {
		for _, w := range work {
			close(w)
		}
	}()
	it, err := cons.Messages(jetstream.PullMaxMessages(2000))
	if err != nil {
		s.log.Error("consume events", "err", err)
		return
	}
	go func() {
		<-ctx.Done()
		it.Stop()
	}()
	// Matchers read and match events in parallel; the order of two events
	// of one group may change by the time it takes to match one, which
	// the windows' lateness bound absorbs.
	type received struct {
		msg jetstream.Msg
		at  time.Time
	}
	msgs := make(chan received, 256)
	var matchers sync.WaitGroup
	for range max(runtime.GOMAXPROCS(0), 2) {
		matchers.Go(func() {
			for m := range msgs {
				s.match(m.msg, m.at, work)
			}
		})
	}
	defer matchers.Wait()
	defer close(msgs)
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				s.log.Error("consume events", "err", err)
			}
			return
		}
		msgs <- received{msg, time.Now()}
	}
}

// match runs an event through the rules of its id and hands the matches
// to the workers.
func (s *Service) match(msg jetstream.Msg, received time.Time, work []chan job) {
	// The subject names the event id: events no rule looks at are not
	// read.
	rules := s.engine.RulesFor(subjectEventID(msg.Subject()))
	if len(rules) == 0 {
		_ = msg.Ack()
		return
	}
	ev, err := decodeStored(msg.Data(), rules, s.engine.SilencesUseLabels())
	if err != nil {
		s.log.Warn("unreadable event in the stream; skipped", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	var jobs []job
	var vars *eventVars
	for _, r := range rules {
		m, err := r.MatchWith(ev, &vars)
		if err != nil {
			s.ruleFailed(r.Name, ev.ID, err)
			continue
		}
		if m.Raise || m.Resolve {
			jobs = append(jobs, job{r: r, m: m, ev: ev, received: received})
		}
	}
	if len(jobs) == 0 {
		_ = msg.Ack()
		if s.opts.OnEventDecided != nil {
			s.opts.OnEventDecided(received, 0)
		}
		return
	}
	t := &tracker{msg: msg, received: received, decided: s.opts.OnEventDecided, matches: len(jobs)}
	t.n.Store(int32(len(jobs)))
	for _, j := range jobs {
		j.t = t
		work[maphash.String(s.seed, j.r.Name+"\x00"+j.m.Key)%uint64(len(work))] <- j
	}
}

// ruleFailed counts a condition or group key that fails on an event, and
// logs it at most once a minute per AlertConfig, so that a rule failing
// on every event does not flood the log.
func (s *Service) ruleFailed(config, event string, err error) {
	s.metrics.ruleErrors.WithLabelValues(config).Inc()
	now := time.Now()
	s.mu.Lock()
	last, n := s.failLog[config], s.failCount[config]+1
	s.failCount[config] = n
	due := now.Sub(last) >= time.Minute
	if due {
		s.failLog[config], s.failCount[config] = now, 0
	}
	s.mu.Unlock()
	if due {
		s.log.Warn("rule fails on event", "config", config, "event", event, "err", err, "failures_since_last_log", n)
	}
}

// subjectEventID returns the event id of a stored event's subject,
// vigil.journal.<EVENT_ID>.<obj_type>.<obj_name>; event ids need no
// escaping.
func subjectEventID(subject string) string {
	rest, ok := strings.CutPrefix(subject, events.JournalPrefix+".")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, ".")
	return id
}

// storedEvent is the part of a stored event that rules read, decoded
// without the validation it passed when it was published.
type storedEvent struct {
	ID     string        `json:"id"`
	Source string        `json:"source"`
	Time   time.Time     `json:"time"`
	Hops   int           `json:"vigilhops,omitempty"`
	Data   events.Record `json:"data"`
}

// decodeStored reads a stored event: in full when a rule or a silence
// looks at extension attributes, else only the fields rules read.
func decodeStored(b []byte, rules []*Rule, labels bool) (*events.Event, error) {
	if labels || slices.ContainsFunc(rules, func(r *Rule) bool { return r.usesExtensions }) {
		var ev events.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			return nil, err
		}
		return &ev, nil
	}
	var se storedEvent
	if err := json.Unmarshal(b, &se); err != nil {
		return nil, err
	}
	ev := &events.Event{ID: se.ID, Source: se.Source, Time: se.Time, Type: se.Data.EventID, Data: se.Data}
	if se.Hops > 0 {
		ev.Extensions = map[string]any{HopsExtension: se.Hops}
	}
	return ev, nil
}

func (s *Service) work(in chan job) {
	for j := range in {
		d, err := s.engine.Apply(j.r, j.m, j.ev)
		if errors.Is(err, nats.ErrMaxPayload) {
			// Deciding again would not shrink it: the event is dropped for
			// this config rather than retried for ever.
			s.log.Error("decide: the group's state is over the largest message; the event is dropped for this AlertConfig",
				"config", j.r.Name, "event", j.ev.ID, "err", err)
			j.t.done(nil)
			continue
		}
		if err != nil {
			s.log.Error("decide", "config", j.r.Name, "event", j.ev.ID, "err", err)
			j.t.done(err)
			continue
		}
		s.handled.Add(1)
		s.metrics.decisions.WithLabelValues(outcomeLabel(d)).Inc()
		s.metrics.latency.Observe(time.Since(j.received).Seconds())
		s.afterDecision(d)
		if s.opts.OnDecision != nil {
			s.opts.OnDecision(d, j.ev, j.received)
		}
		j.t.done(nil)
	}
}

// afterDecision hands the flusher what a saved decision leaves to do: its
// requests to queue, its new alert to index, its refused actions to
// record.
func (s *Service) afterDecision(d *Decision) {
	var failed []ActionOutcome
	for _, o := range d.Planned {
		if o.Status == OutcomeFailed {
			failed = append(failed, o)
		}
	}
	if len(d.Out) == 0 && !d.Raised && len(failed) == 0 {
		return
	}
	q := queued{config: d.Config, key: d.Key, out: d.Out, failed: failed}
	if d.Alert != nil {
		q.alert, q.raised = d.Alert.ID, d.Raised
	}
	s.flush <- q
}

// queued is a group's outbox entries to move to the actions stream.
type queued struct {
	config, key string
	out         []Outbound
	// alert is the decision's alert, raised set when it is new (to index);
	// failed are outcomes of actions refused when planned.
	alert  string
	raised bool
	failed []ActionOutcome
}

// flusher moves the outbox entries of the decisions this instance made to
// the actions stream right away; the group's next write drops them from
// its outbox.
func (s *Service) flusher(ctx context.Context) {
	for {
		select {
		case q := <-s.flush:
			// The actions go first: the alert's index and refused
			// outcomes are bookkeeping that no action waits for.
			var done []string
			for _, o := range q.out {
				if s.queue(ctx, o) {
					done = append(done, o.Key)
				}
			}
			s.cache.Queued(q.config, q.key, done)
			if q.raised {
				if err := s.store.PutIndex(q.alert, q.config, q.key, s.keepFor(q.config)); err != nil {
					s.log.Warn("index alert", "alert", q.alert, "err", err)
				}
			}
			for _, o := range q.failed {
				if err := s.store.PutOutcome(q.alert, o, s.keepFor(q.config)); err != nil {
					s.log.Warn("record action outcome", "key", o.Key, "err", err)
				}
				s.log.Warn("action refused", "config", q.config, "alert", q.alert, "target", o.Target, "err", o.Error)
			}
		case <-ctx.Done():
			return
		}
	}
}

// queue moves an outbox entry on: a ControlScript action straight to the
// runner's queue when this process runs scripts, else (or when the runner
// refuses it) to the actions stream. The stream drops a repeated key for
// actionsDuplicates, and the receiver sees the key.
func (s *Service) queue(ctx context.Context, o Outbound) bool {
	var q ActionRequest
	_ = json.Unmarshal(o.Data, &q)
	kind := q.Kind
	if kind == "" {
		kind = "unknown"
	}
	if kind == ActionControlScript && s.opts.Scripts != nil && s.submit(ctx, &q) {
		return true
	}
	if _, err := s.opts.JS.Publish(ctx, ActionsPrefix+"."+kind, o.Data, jetstream.WithMsgID(o.Key)); err != nil {
		s.log.Warn("queue action; it stays in the outbox", "key", o.Key, "err", err)
		return false
	}
	return true
}

// submit queues a ControlScript action on the runner's own durable queue,
// skipping the actions stream: its execution id derives from the key, so
// a repeat runs nothing new. The outcome is recorded when the run ends;
// an alert read before that (or after this process died) shows the
// execution's own status. False leaves the action to the actions stream
// and its retries.
func (s *Service) submit(ctx context.Context, q *ActionRequest) bool {
	g := s.group(q.Group)
	if g == nil || g.ControlScript == "" {
		return false
	}
	alert, err := json.Marshal(q.Notice.Alert)
	if err != nil {
		return false
	}
	ex, err := s.opts.Scripts.Submit(ctx, runner.RunRequest{
		ID: ExecutionID(q), Script: g.ControlScript, Trigger: runner.TriggerAlert, User: "alert:" + q.Config, Alert: alert,
	})
	if err != nil {
		s.log.Warn("run a ControlScript action; it goes through the actions stream", "key", q.Key, "err", err)
		return false
	}
	o := ActionOutcome{
		Key: q.Key, Kind: q.Kind, Target: q.Target(), Resolve: q.Resolve, Tries: 1,
		Status: OutcomeQueued, At: s.opts.Now().UTC(), Execution: ex.ID,
	}
	s.record(q, o)
	s.wg.Go(func() { s.awaitRun(ctx, q, o) })
	return true
}

// awaitRun records a ControlScript action's outcome when its run ends.
func (s *Service) awaitRun(ctx context.Context, q *ActionRequest, o ActionOutcome) {
	ex, err := s.opts.Scripts.Wait(ctx, o.Execution)
	if err != nil {
		return // stopping: the alert shows the execution's own status
	}
	o.At, o.Status = s.opts.Now().UTC(), OutcomeDelivered
	if o.Output, o.Error = runOutcome(ex); o.Error != "" {
		o.Status = OutcomeFailed
	}
	s.metrics.deliveries.WithLabelValues(q.Kind, o.Status).Inc()
	s.delivered.Add(1)
	s.record(q, o)
}

// sweepEvery is how often every state's outbox is checked; well inside
// actionsDuplicates, so that a request queued again is dropped as a repeat.
const sweepEvery = 2 * time.Minute

// sweeper queues the outbox entries older than outboxGrace — of an engine
// that died between deciding and queueing, of a group not written since,
// or refused by a full actions stream — and removes them from their
// states; at start, then every sweepEvery.
func (s *Service) sweeper(ctx context.Context) {
	t := time.NewTimer(outboxGrace)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		s.sweep(ctx)
		t.Reset(sweepEvery)
	}
}

func (s *Service) sweep(ctx context.Context) {
	type group struct{ config, key string }
	var groups []group
	now := s.opts.Now()
	if err := s.store.Range("", func(config, key string, st *GroupState) bool {
		for _, o := range st.Outbox {
			if now.Sub(o.At) >= outboxGrace {
				groups = append(groups, group{config, key})
				break
			}
		}
		return ctx.Err() == nil
	}); err != nil {
		s.log.Warn("sweep the outbox", "err", err)
		return
	}
	for _, g := range groups {
		st, rev, err := s.cache.Load(g.config, g.key)
		if err != nil || st == nil {
			continue
		}
		var done []string
		for _, o := range st.Outbox {
			if now.Sub(o.At) >= outboxGrace && s.queue(ctx, o) {
				done = append(done, o.Key)
			}
		}
		if len(done) == 0 {
			continue
		}
		st.Outbox = slices.DeleteFunc(st.Outbox, func(o Outbound) bool { return slices.Contains(done, o.Key) })
		// A conflict leaves them for the group's next write or sweep.
		if err := s.cache.Save(g.config, g.key, st, rev); err == nil {
			s.log.Info("queued actions left in an outbox", "config", g.config, "count", len(done))
		}
	}
}

// ticker acts on once_after groups whose time came, and removes expired
// alerts.
func (s *Service) ticker(ctx context.Context) {
	t := time.NewTicker(s.opts.Tick)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		ds, err := s.engine.Due()
		if err != nil {
			s.log.Warn("once_after groups", "err", err)
		}
		for i := range ds {
			s.afterDecision(&ds[i])
		}
		if n%60 == 0 {
			gone, err := s.engine.Expire()
			if err != nil {
				s.log.Warn("expire alerts", "err", err)
			}
			for _, a := range gone {
				s.log.Info("alert expired", "alert", a.ID, "config", a.Config)
			}
		}
	}
}

// consumeActions delivers the queued actions, Deliveries at a time.
func (s *Service) consumeActions(ctx context.Context, cons jetstream.Consumer) {
	it, err := cons.Messages(jetstream.PullMaxMessages(s.opts.Deliveries))
	if err != nil {
		s.log.Error("consume actions", "err", err)
		return
	}
	go func() {
		<-ctx.Done()
		it.Stop()
	}()
	sem := make(chan struct{}, s.opts.Deliveries)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				s.log.Error("consume actions", "err", err)
			}
			return
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s.handleAction(ctx, msg)
		})
	}
}

// DeadLetter is an action request that could not be delivered.
type DeadLetter struct {
	// Seq is its sequence in the dead-letter stream, what replay takes.
	Seq     uint64        `json:"seq"`
	Request ActionRequest `json:"request"`
	Error   string        `json:"error"`
	// Status is the receiver's HTTP status, when there was one.
	Status int       `json:"status,omitempty"`
	Tries  int       `json:"tries"`
	At     time.Time `json:"at"`
}

func retryPolicy(g *ActionGroupSpec) (tries int, backoff, maxBackoff time.Duration) {
	tries, backoff, maxBackoff = DefaultTries, DefaultBackoff, DefaultMaxBackoff
	if g != nil && g.Retry != nil {
		if g.Retry.Tries > 0 {
			tries = g.Retry.Tries
		}
		if g.Retry.Backoff != 0 {
			backoff = g.Retry.Backoff.D()
		}
		if g.Retry.MaxBackoff != 0 {
			maxBackoff = g.Retry.MaxBackoff.D()
		}
	}
	return tries, backoff, max(maxBackoff, backoff)
}

// Backoff is the wait before try n+1 after n failed tries: exponential
// from base, capped at limit, with "equal jitter" (half fixed, half
// random); a receiver's Retry-After, when longer, wins, up to an hour.
func Backoff(n int, base, limit, retryAfter time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	d = d/2 + rand.N(d/2+1)
	if retryAfter > d {
		d = min(retryAfter, time.Hour)
	}
	return d
}

func (s *Service) handleAction(ctx context.Context, msg jetstream.Msg) {
	var q ActionRequest
	if err := json.Unmarshal(msg.Data(), &q); err != nil {
		s.log.Error("unreadable action request; dropped", "err", err)
		_ = msg.Term()
		return
	}
	tries := 1
	if md, err := msg.Metadata(); err == nil {
		tries = int(md.NumDelivered)
	}
	g := s.group(q.Group)
	maxTries, backoff, maxBackoff := retryPolicy(g)
	var res Result
	var err error
	if g == nil {
		err = permanent("ActionGroup %q does not exist", q.Group)
	} else {
		stop := events.KeepInProgress(msg, actionsAckWait/3)
		res, err = s.deliver.Deliver(ctx, &q, g)
		stop()
	}
	if ctx.Err() != nil {
		return // stopping: the request is redelivered
	}
	o := ActionOutcome{Key: q.Key, Kind: q.Kind, Target: q.Target(), Resolve: q.Resolve, Tries: tries, At: s.opts.Now().UTC(), Execution: res.Execution}
	if err == nil {
		o.Status = OutcomeDelivered
		if res.Failed != "" {
			o.Status, o.Error = OutcomeFailed, res.Failed
		}
		o.Output = res.Output
		s.metrics.deliveries.WithLabelValues(q.Kind, o.Status).Inc()
		s.record(&q, o)
		s.delivered.Add(1)
		_ = msg.Ack()
		return
	}
	f := &Failure{Err: err}
	errors.As(err, &f)
	o.Error = err.Error()
	if !f.Permanent && tries < maxTries {
		o.Status = OutcomeRetrying
		s.metrics.deliveries.WithLabelValues(q.Kind, o.Status).Inc()
		s.record(&q, o)
		_ = msg.NakWithDelay(Backoff(tries, backoff, maxBackoff, f.RetryAfter))
		return
	}
	dl := DeadLetter{Request: q, Error: err.Error(), Status: f.Status, Tries: tries, At: o.At}
	b, _ := json.Marshal(&dl)
	if _, perr := s.opts.JS.Publish(ctx, DeadLetterPrefix+"."+q.Kind, b); perr != nil {
		s.log.Error("dead-letter an action; it is retried", "key", q.Key, "err", perr)
		_ = msg.NakWithDelay(maxBackoff)
		return
	}
	o.Status = OutcomeDead
	s.metrics.deliveries.WithLabelValues(q.Kind, o.Status).Inc()
	s.record(&q, o)
	s.log.Warn("action dead-lettered", "key", q.Key, "kind", q.Kind, "config", q.Config, "tries", tries, "err", err)
	_ = msg.Ack()
}

// keepFor is how long what belongs to an alert of config (its index, its
// actions' outcomes) is kept: the alert's expiry, and an hour.
func (s *Service) keepFor(config string) time.Duration {
	expiry := DefaultExpiry
	if r := s.engine.Rule(config); r != nil && r.Spec.Expiry != 0 {
		expiry = r.Spec.Expiry.D()
	}
	return expiry + time.Hour
}

// record writes an action's outcome beside its alert's state; it lives as
// long as the alert can.
func (s *Service) record(q *ActionRequest, o ActionOutcome) {
	if err := s.store.PutOutcome(q.Notice.ID, o, s.keepFor(q.Config)); err != nil {
		s.log.Warn("record action outcome", "key", q.Key, "err", err)
	}
}
