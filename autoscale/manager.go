package autoscale

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/dataplane/spec"
	"github.com/vigilhq/vigil/events"
)

// Directions of a decision.
const (
	Out = "out"
	In  = "in"
)

// Outcomes of a decision.
const (
	DecisionScaleOut = "scale_out"
	DecisionScaleIn  = "scale_in"
	DecisionSkipped  = "skipped"
)

// Bucket is the KV bucket of the manager's state, one key per pool.
const Bucket = "vigil_autoscale"

// keptDecisions is how many decisions a pool's state remembers, for
// triggers delivered again.
const keptDecisions = 64

// ErrConfig is wrapped by the errors of a trigger that the configuration
// cannot serve (no such pool, no policy, an AlertConfig the policy does not
// list): retrying does not help; fixing the config and replaying does.
var ErrConfig = errors.New("autoscale config")

// Publisher stores events.
type Publisher interface {
	Publish(ctx context.Context, ev *events.Event) (events.PublishResult, error)
}

// Trigger is an alert handed to the manager by an ActionGroup with
// autoscale: true.
type Trigger struct {
	// Key is the action's idempotency key: a trigger delivered again with
	// the same key gets the decision made the first time.
	Key string
	// AlertConfig names the alert's AlertConfig; ObjType and ObjName its
	// object, which must be a pool.
	AlertConfig string
	ObjType     string
	ObjName     string
	// Resolve is set for the action run when the alert resolves.
	Resolve bool
	// Reason is put in the event, e.g. the alert's summary.
	Reason string
	// ServersUp, when at least 0, is the pool's servers up as the alert's
	// last POOL_METRICS said; -1 when unknown.
	ServersUp int
}

// Result is a decision.
type Result struct {
	// Decision is DecisionScaleOut, DecisionScaleIn or DecisionSkipped.
	Decision string `json:"decision"`
	// Count is the servers to add or remove.
	Count int `json:"count,omitempty"`
	// RequestID identifies the operation: it is the SERVER_AUTOSCALE_*
	// event's id and its details' request_id.
	RequestID string `json:"request_id,omitempty"`
	// Reason says why, for a skipped decision too.
	Reason string `json:"reason"`
	// Candidates are the servers a scale-in removes.
	Candidates []ServerID `json:"candidates,omitempty"`
	At         time.Time  `json:"at"`
}

// String is the decision in one line, as an alert's action shows it.
func (r Result) String() string {
	if r.Decision == DecisionSkipped {
		return "autoscale: skipped: " + r.Reason
	}
	return fmt.Sprintf("autoscale: %s of %d server(s), request %s: %s", strings.ReplaceAll(r.Decision, "_", "-"), r.Count, r.RequestID, r.Reason)
}

// ServerID names a server as Avi's ServerId does.
type ServerID struct {
	IP       IPAddr `json:"ip"`
	Port     int    `json:"port"`
	Hostname string `json:"hostname,omitempty"`
}

// IPAddr is Avi's IpAddr.
type IPAddr struct {
	Addr string `json:"addr"`
	Type string `json:"type"`
}

// Operation is a scale-out or scale-in decided and not yet reported done.
type Operation struct {
	RequestID string     `json:"request_id"`
	Direction string     `json:"direction"`
	Count     int        `json:"count"`
	Servers   []ServerID `json:"servers,omitempty"`
	Started   time.Time  `json:"started"`
	Deadline  time.Time  `json:"deadline"`
}

// State is what the manager keeps for one pool.
type State struct {
	LastScaleout time.Time   `json:"last_scaleout,omitzero"`
	LastScalein  time.Time   `json:"last_scalein,omitzero"`
	InFlight     []Operation `json:"in_flight,omitempty"`
	// ScaledOut are the servers that scale-outs reported adding
	// (SERVER_AUTOSCALE_OUT_COMPLETE's scaled_out_servers) and no scale-in
	// has reported removing: a scale-in takes these first.
	ScaledOut []ServerID `json:"scaled_out,omitempty"`
	// Decisions are the latest decisions, oldest first, by trigger key.
	Decisions []KeyedResult `json:"decisions,omitempty"`
}

// KeyedResult is a decision and the trigger key that asked for it.
type KeyedResult struct {
	Key string `json:"key"`
	Result
}

// Options configure a Manager.
type Options struct {
	Store  *config.Store
	JS     jetstream.JetStream
	Events Publisher
	// Replicas of the state bucket; default 1.
	Replicas int
	Logger   *slog.Logger
	Now      func() time.Time
}

// Manager decides scale-outs and scale-ins.
type Manager struct {
	opts Options
	kv   jetstream.KeyValue
	log  *slog.Logger
	now  func() time.Time

	mu      sync.Mutex
	reports jetstream.ConsumeContext
}

// requestSpace is the namespace of request ids (UUIDv5 of trigger keys).
var requestSpace = uuid.MustParse("0b6f3d52-93a4-5e7c-a1d8-2c47e9f05b13")

// New opens the manager's bucket.
func New(ctx context.Context, opts Options) (*Manager, error) {
	if opts.Store == nil || opts.JS == nil || opts.Events == nil {
		return nil, errors.New("autoscale: Store, JS and Events are required")
	}
	kv, err := opts.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "autoscale: each pool's last decisions and operations in flight",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(opts.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", Bucket, err)
	}
	m := &Manager{opts: opts, kv: kv, log: opts.Logger, now: opts.Now}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.now == nil {
		m.now = time.Now
	}
	return m, nil
}

// Reports are the events by which scripts report an operation's end; each
// ends the operation whose request_id its details carry.
var Reports = map[string]string{
	"SERVER_AUTOSCALE_OUT_COMPLETE": "server_autoscaleout_complete_info",
	"SERVER_AUTOSCALE_IN_COMPLETE":  "server_autoscalein_complete_info",
	"SERVER_AUTOSCALE_OUT_FAILED":   "server_autoscale_failed_info",
	"SERVER_AUTOSCALE_IN_FAILED":    "server_autoscale_failed_info",
	"SERVER_AUTOSCALE_FAILED":       "server_autoscale_failed_info",
}

// ReportsConsumer is the durable consumer of the events stream by which
// managers follow the scripts' reports; managers sharing a NATS server
// share it, so each report is applied once.
const ReportsConsumer = "vigil-autoscale-reports"

// Start follows the scripts' reports, so that an operation they report
// done stops counting as in flight. It reads them from the events stream
// through a durable consumer: a report published while no manager ran is
// applied when one starts.
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	filters := make([]string, 0, len(Reports))
	for id := range Reports {
		filters = append(filters, events.JournalPrefix+"."+id+".pool.>")
	}
	sort.Strings(filters)
	cons, err := m.opts.JS.CreateOrUpdateConsumer(ctx, events.EventsStream, jetstream.ConsumerConfig{
		Durable:        ReportsConsumer,
		Description:    "autoscale: the scripts' reports of their operations",
		FilterSubjects: filters,
		// The first manager starts with the reports that come after it; a
		// durable consumer resumes where the managers left off.
		DeliverPolicy: jetstream.DeliverNewPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    10,
	})
	if err != nil {
		return fmt.Errorf("autoscale: follow reports: %w", err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		id, _, _ := strings.Cut(strings.TrimPrefix(msg.Subject(), events.JournalPrefix+"."), ".")
		if err := m.report(ctx, id, Reports[id], msg.Data()); err != nil {
			m.log.Warn("autoscale: apply a report; it comes again", "event_id", id, "error", err)
			_ = msg.NakWithDelay(time.Second)
			return
		}
		_ = msg.Ack()
	})
	if err != nil {
		return fmt.Errorf("autoscale: follow reports: %w", err)
	}
	m.reports = cc
	return nil
}

// Stop stops following reports.
func (m *Manager) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.reports != nil {
		m.reports.Stop()
		m.reports = nil
	}
}

// report applies a script's report; an error is worth another try.
func (m *Manager) report(ctx context.Context, id, key string, data []byte) error {
	var ev events.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		m.log.Warn("autoscale: unreadable report", "event_id", id, "error", err)
		return nil
	}
	var d struct {
		RequestID string     `json:"request_id"`
		Out       []ServerID `json:"scaled_out_servers"`
		In        []ServerID `json:"scaled_in_servers"`
	}
	if raw, ok := ev.Data.EventDetails[key]; ok {
		_ = json.Unmarshal(raw, &d)
	}
	if d.RequestID == "" && len(d.Out) == 0 && len(d.In) == 0 {
		return nil
	}
	pool := ev.Data.ObjName
	err := m.update(ctx, pool, func(st *State) bool {
		changed := false
		for i, op := range st.InFlight {
			if d.RequestID != "" && op.RequestID == d.RequestID {
				st.InFlight = append(st.InFlight[:i], st.InFlight[i+1:]...)
				changed = true
				break
			}
		}
		for _, s := range d.Out {
			if s.IP.Addr != "" && indexServer(st.ScaledOut, s) < 0 && len(st.ScaledOut) < MaxSize {
				st.ScaledOut = append(st.ScaledOut, s)
				changed = true
			}
		}
		for _, s := range d.In {
			if i := indexServer(st.ScaledOut, s); i >= 0 {
				st.ScaledOut = append(st.ScaledOut[:i], st.ScaledOut[i+1:]...)
				changed = true
			}
		}
		return changed
	})
	if err != nil {
		return fmt.Errorf("pool %s, request %s: %w", pool, d.RequestID, err)
	}
	m.log.Info("autoscale: operation ended", "pool", pool, "event_id", id, "request_id", d.RequestID)
	return nil
}

// State returns a pool's state (zero when it has none).
func (m *Manager) State(ctx context.Context, pool string) (*State, error) {
	st, _, err := m.load(ctx, pool)
	return st, err
}

// Trigger decides what an alert asks of its pool and, for a scale-out or
// a scale-in, publishes SERVER_AUTOSCALE_OUT or SERVER_AUTOSCALE_IN. The
// decision is recorded before the event is published; a trigger with a
// key already decided returns that decision and, while its operation is
// in flight, publishes its event again (its id makes the bus drop the
// copy): an operation that ended is not started again by a late retry or
// a replay.
func (m *Manager) Trigger(ctx context.Context, t Trigger) (Result, error) {
	if t.Resolve {
		return Result{Decision: DecisionSkipped, Reason: "a resolved alert asks for nothing", At: m.now()}, nil
	}
	if t.ObjType != "pool" {
		return Result{}, fmt.Errorf("%w: AlertConfig %s: autoscale needs alerts on a pool, this one is on %s %q", ErrConfig, t.AlertConfig, t.ObjType, t.ObjName)
	}
	poolObj, pool, err := m.pool(ctx, t.ObjName)
	if err != nil {
		return Result{}, err
	}
	if pool.AutoscalePolicy == "" {
		return Result{}, fmt.Errorf("%w: Pool %s has no autoscale_policy", ErrConfig, t.ObjName)
	}
	pol, err := m.policy(ctx, pool.AutoscalePolicy)
	if err != nil {
		return Result{}, err
	}
	dir := pol.Direction(t.AlertConfig)
	if dir == "" {
		return Result{}, fmt.Errorf("%w: AutoscalePolicy %s lists AlertConfig %s in neither scaleout_alertconfigs nor scalein_alertconfigs",
			ErrConfig, pool.AutoscalePolicy, t.AlertConfig)
	}
	var res Result
	var again, ended bool
	err = m.update(ctx, t.ObjName, func(st *State) bool {
		for _, d := range st.Decisions {
			if d.Key == t.Key {
				res, again, ended = d.Result, true, true
				now := m.now()
				for _, op := range st.InFlight {
					if op.RequestID == res.RequestID && now.Before(op.Deadline) {
						ended = false
					}
				}
				return false
			}
		}
		now := m.now()
		res = Decide(pol, pool, st, dir, now)
		if res.Count > 0 {
			res.RequestID = uuid.NewSHA1(requestSpace, []byte(t.Key)).String()
			op := Operation{RequestID: res.RequestID, Direction: dir, Count: res.Count, Servers: res.Candidates, Started: now, Deadline: now.Add(pol.Timeout())}
			st.InFlight = append(st.InFlight, op)
			if dir == Out {
				st.LastScaleout = now
			} else {
				st.LastScalein = now
			}
		}
		st.Decisions = append(st.Decisions, KeyedResult{Key: t.Key, Result: res})
		if n := len(st.Decisions) - keptDecisions; n > 0 {
			st.Decisions = append([]KeyedResult(nil), st.Decisions[n:]...)
		}
		return true
	})
	if err != nil {
		return Result{}, err
	}
	if res.Count == 0 || ended {
		if !again {
			m.log.Info("autoscale: skipped", "pool", t.ObjName, "alertconfig", t.AlertConfig, "reason", res.Reason)
		}
		return res, nil
	}
	ev, err := m.event(poolObj, pool, pol, t, res)
	if err != nil {
		return Result{}, err
	}
	if _, err := m.opts.Events.Publish(ctx, ev); err != nil {
		return Result{}, fmt.Errorf("autoscale: publish %s: %w", ev.Data.EventID, err)
	}
	if !again {
		m.log.Info("autoscale: decided", "pool", t.ObjName, "alertconfig", t.AlertConfig, "decision", res.Decision,
			"count", res.Count, "request_id", res.RequestID)
	}
	return res, nil
}

// Decide is the policy's answer for a pool in state st at now: Avi's
// cooldown, step and min/max rules. An operation in flight counts toward
// the size it will give, and blocks a decision the other way.
func Decide(pol *Policy, pool *spec.Pool, st *State, dir string, now time.Time) Result {
	res := Result{Decision: DecisionSkipped, At: now}
	live := st.InFlight[:0]
	for _, op := range st.InFlight {
		if now.Before(op.Deadline) {
			live = append(live, op)
		}
	}
	st.InFlight = live
	adding, nremoving := 0, 0
	var removing []ServerID
	for _, op := range st.InFlight {
		if op.Direction == Out {
			adding += op.Count
		} else {
			nremoving += op.Count
			removing = append(removing, op.Servers...)
		}
		if op.Direction != dir {
			res.Reason = fmt.Sprintf("a scale-%s is in flight (request %s, until %s)", op.Direction, op.RequestID, op.Deadline.UTC().Format(time.RFC3339))
			return res
		}
	}
	size := len(pool.Servers)
	outCD, inCD := pol.Cooldowns()
	outStep, inStep := pol.Steps()
	switch dir {
	case Out:
		if next := st.LastScaleout.Add(outCD); !st.LastScaleout.IsZero() && now.Before(next) {
			res.Reason = fmt.Sprintf("scale-out cooldown until %s", next.UTC().Format(time.RFC3339))
			return res
		}
		have := size + adding
		if have >= pol.MaxSize {
			res.Reason = fmt.Sprintf("at max_size %d (%d servers, %d being added)", pol.MaxSize, size, adding)
			return res
		}
		res.Decision, res.Count = DecisionScaleOut, min(outStep, pol.MaxSize-have)
		res.Reason = fmt.Sprintf("%d servers, %d being added, max_size %d", size, adding, pol.MaxSize)
	case In:
		if next := st.LastScalein.Add(inCD); !st.LastScalein.IsZero() && now.Before(next) {
			res.Reason = fmt.Sprintf("scale-in cooldown until %s", next.UTC().Format(time.RFC3339))
			return res
		}
		have := size - nremoving
		if have <= pol.MinSize {
			res.Reason = fmt.Sprintf("at min_size %d (%d servers, %d being removed)", pol.MinSize, size, nremoving)
			return res
		}
		n := min(inStep, have-pol.MinSize)
		// The servers scale-outs added go first, then the others; each
		// the last first, as Avi's sample removes the newest.
		for _, scaled := range []bool{true, false} {
			for i := len(pool.Servers) - 1; i >= 0 && len(res.Candidates) < n; i-- {
				s := pool.Servers[i]
				id := ServerID{IP: IPAddr{Addr: s.IP, Type: ipType(s.IP)}, Port: pool.ServerPort(&s), Hostname: s.Hostname}
				if (indexServer(st.ScaledOut, id) >= 0) == scaled && indexServer(removing, id) < 0 {
					res.Candidates = append(res.Candidates, id)
				}
			}
		}
		if len(res.Candidates) == 0 {
			res.Reason = "every server is already being removed"
			return res
		}
		res.Decision, res.Count = DecisionScaleIn, len(res.Candidates)
		res.Reason = fmt.Sprintf("%d servers, %d being removed, min_size %d", size, nremoving, pol.MinSize)
	}
	return res
}

// indexServer returns the index in list of the server with s's address
// and port, or -1.
func indexServer(list []ServerID, s ServerID) int {
	for i, l := range list {
		if l.IP.Addr == s.IP.Addr && l.Port == s.Port {
			return i
		}
	}
	return -1
}

func ipType(ip string) string {
	if strings.Contains(ip, ":") {
		return "V6"
	}
	return "V4"
}

// event builds the SERVER_AUTOSCALE_OUT or _IN of a decision, with Avi's
// details plus vigil's pool and request_id.
func (m *Manager) event(poolObj *config.Object, pool *spec.Pool, pol *Policy, t Trigger, res Result) (*events.Event, error) {
	up := t.ServersUp
	if up < 0 {
		up = 0
		for i := range pool.Servers {
			if pool.Servers[i].IsEnabled() {
				up++
			}
		}
	}
	reason := t.Reason
	if reason == "" {
		reason = "alert " + t.AlertConfig
	}
	info := map[string]any{
		"pool_ref": "/api/v1/objects/Pool/" + t.ObjName, "pool": t.ObjName,
		"num_servers_up": up, "alertconfig_name": t.AlertConfig,
		"alertconfig_ref": "/api/v1/objects/AlertConfig/" + t.AlertConfig,
		"reason":          reason, "request_id": res.RequestID,
		"min_size": pol.MinSize, "max_size": pol.MaxSize, "num_servers": len(pool.Servers),
	}
	id, key := "SERVER_AUTOSCALE_OUT", "server_autoscaleout_info"
	if res.Decision == DecisionScaleIn {
		id, key = "SERVER_AUTOSCALE_IN", "server_autoscalein_info"
		info["num_scalein_servers"] = res.Count
		info["scalein_server_candidates"] = res.Candidates
	} else {
		info["num_scaleout_servers"] = res.Count
	}
	ev, err := events.New(id, "pool", t.ObjName, map[string]any{key: info}, "vigil/autoscale", res.At)
	if err != nil {
		return nil, fmt.Errorf("autoscale: %w", err)
	}
	ev.ID = res.RequestID
	ev.Data.ObjUUID = poolObj.Metadata.UUID
	return ev, nil
}

func (m *Manager) pool(ctx context.Context, name string) (*config.Object, *spec.Pool, error) {
	obj, err := m.opts.Store.Get(ctx, spec.KindPool, name)
	if errors.Is(err, config.ErrNotFound) {
		return nil, nil, fmt.Errorf("%w: Pool %s does not exist", ErrConfig, name)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("autoscale: %w", err)
	}
	p, err := spec.ParsePool(obj.Spec)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: Pool %s: %w", ErrConfig, name, err)
	}
	return obj, p, nil
}

func (m *Manager) policy(ctx context.Context, name string) (*Policy, error) {
	obj, err := m.opts.Store.Get(ctx, KindAutoscalePolicy, name)
	if errors.Is(err, config.ErrNotFound) {
		return nil, fmt.Errorf("%w: AutoscalePolicy %s does not exist", ErrConfig, name)
	}
	if err != nil {
		return nil, fmt.Errorf("autoscale: %w", err)
	}
	p, err := ParsePolicy(obj.Spec)
	if err != nil {
		return nil, fmt.Errorf("%w: AutoscalePolicy %s: %w", ErrConfig, name, err)
	}
	return p, nil
}

func (m *Manager) load(ctx context.Context, pool string) (*State, uint64, error) {
	e, err := m.kv.Get(ctx, pool)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return &State{}, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("autoscale: read state of %s: %w", pool, err)
	}
	var st State
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return nil, 0, fmt.Errorf("autoscale: state of %s: %w", pool, err)
	}
	return &st, e.Revision(), nil
}

// update applies fn to a pool's state and writes it back when fn says it
// changed it, retrying when another instance wrote meanwhile.
func (m *Manager) update(ctx context.Context, pool string, fn func(*State) bool) error {
	for attempt := 0; ; attempt++ {
		st, rev, err := m.load(ctx, pool)
		if err != nil {
			return err
		}
		if !fn(st) {
			return nil
		}
		b, err := json.Marshal(st)
		if err != nil {
			return fmt.Errorf("autoscale: %w", err)
		}
		if rev == 0 {
			_, err = m.kv.Create(ctx, pool, b)
		} else {
			_, err = m.kv.Update(ctx, pool, b, rev)
		}
		if err == nil {
			return nil
		}
		if !events.KVConflict(err) || attempt >= 49 {
			return fmt.Errorf("autoscale: write state of %s: %w", pool, err)
		}
		// Another instance wrote meanwhile: wait a little, at random, so
		// that writers contending for one pool spread out.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(1+rand.IntN(min(attempt+1, 10))) * time.Millisecond):
		}
	}
}
