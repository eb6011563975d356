package dataplane

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/vigilhq/vigil/dataplane/datascript"
	"github.com/vigilhq/vigil/dataplane/health"
	"github.com/vigilhq/vigil/dataplane/spec"
	"github.com/vigilhq/vigil/events"
)

// monitors parses the HealthMonitor specs; p.mu is held.
func (p *Proxy) monitors() map[string]*spec.HealthMonitor {
	out := map[string]*spec.HealthMonitor{}
	for name, raw := range p.specs[spec.KindHealthMonitor] {
		hm, err := spec.ParseHealthMonitor(raw)
		if err != nil {
			p.log.Error("health monitor refused", "health_monitor", name, "err", err)
			continue
		}
		out[name] = hm
	}
	return out
}

// scriptObjects compiles the DataScriptSets and prepares the groups; p.mu
// is held.
func (p *Proxy) scriptObjects() (map[string]*datascript.Set, map[string]*datascript.StringGroup, map[string]*datascript.IPGroup) {
	sets := map[string]*datascript.Set{}
	for name, raw := range p.specs[spec.KindDataScriptSet] {
		ds, err := spec.ParseDataScriptSet(raw)
		if err == nil {
			sets[name], err = datascript.Compile(name, ds)
		}
		if err != nil {
			p.log.Error("DataScriptSet refused", "datascript", name, "err", err)
			delete(sets, name)
		}
	}
	sgs := map[string]*datascript.StringGroup{}
	for name, raw := range p.specs[spec.KindStringGroup] {
		g, err := spec.ParseStringGroup(raw)
		if err != nil {
			p.log.Error("string group refused", "string_group", name, "err", err)
			continue
		}
		sgs[name] = datascript.NewStringGroup(g)
	}
	ipgs := map[string]*datascript.IPGroup{}
	for name, raw := range p.specs[spec.KindIPGroup] {
		g, err := spec.ParseIPGroup(raw)
		var ig *datascript.IPGroup
		if err == nil {
			ig, err = datascript.NewIPGroup(g)
		}
		if err != nil {
			p.log.Error("IP group refused", "ip_group", name, "err", err)
			continue
		}
		ipgs[name] = ig
	}
	return sets, sgs, ipgs
}

// engine returns the virtual service's DataScript engine, updated to the
// new snapshot, or nil when it has no scripts. An engine lives as long as
// its virtual service, so that its tables and rate limiters outlive config
// changes.
func (p *Proxy) engine(rt *vsRuntime, l *listener, sets map[string]*datascript.Set,
	sgs map[string]*datascript.StringGroup, ipgs map[string]*datascript.IPGroup,
) *datascript.Engine {
	var list []*datascript.Set
	for _, name := range rt.spec.DataScripts {
		s := sets[name]
		if s == nil {
			p.log.Warn("virtual service names a DataScriptSet that does not exist or was refused; it is skipped",
				"virtual_service", rt.name, "datascript", name)
			continue
		}
		list = append(list, s)
	}
	if len(list) == 0 {
		delete(p.engines, rt.name)
		return nil
	}
	env := datascript.Env{
		VS: rt.name, Sets: list, StringGroups: sgs, IPGroups: ipgs,
		Pools:         poolView{rt},
		Publish:       func(id string, d map[string]any) error { return rt.pub.event(id, "virtualservice", rt.name, d) },
		OpenConns:     func() int { return int(l.conns.Load()) },
		MaxConcurrent: rt.spec.MaxConcurrentScripts,
		Budget:        p.opts.ScriptBudget,
	}
	e := p.engines[rt.name]
	if e == nil {
		e = datascript.NewEngine(env)
		p.engines[rt.name] = e
	} else {
		e.Update(env)
	}
	return e
}

// poolView answers the scripts' questions about pools from a snapshot.
type poolView struct{ rt *vsRuntime }

func (v poolView) Exists(pool string) bool { return v.rt.pools[pool] != nil }

func (v poolView) Servers(pool string) (up, total int) {
	if p := v.rt.pools[pool]; p != nil {
		return p.counts()
	}
	return 0, 0
}

func (v poolView) ServerStatus(pool, server string, port int) (up, known bool) {
	p := v.rt.pools[pool]
	if p == nil {
		return false, false
	}
	if m := p.findServer(server, port); m != nil {
		return m.up(), true
	}
	return false, false
}

// publisher publishes the data plane's own events off the request path:
// a bounded queue, dropped (and counted in the log) when full.
type publisher struct {
	pub   health.Publisher
	log   *slog.Logger
	queue chan *events.Event

	mu      sync.Mutex
	dropped int
	lastLog time.Time
	// errLast limits DATASCRIPT_ERROR to one a second per virtual service.
	errLast map[string]time.Time
}

const publishQueue = 1024

func newPublisher(pub health.Publisher, log *slog.Logger) *publisher {
	return &publisher{pub: pub, log: log, queue: make(chan *events.Event, publishQueue), errLast: map[string]time.Time{}}
}

func (p *publisher) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-p.queue:
			if p.pub == nil {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if _, err := p.pub.Publish(pctx, ev); err != nil {
				p.log.Warn("publish event", "event", ev.Type, "err", err)
			}
			cancel()
		}
	}
}

// event queues an event; it fails only when the event is invalid.
func (p *publisher) event(id, objType, objName string, details map[string]any) error {
	ev, err := events.New(id, objType, objName, details, "/vigil/dataplane", time.Now())
	if err != nil {
		return err
	}
	select {
	case p.queue <- ev:
	default:
		p.mu.Lock()
		p.dropped++
		if time.Since(p.lastLog) > 10*time.Second {
			p.log.Warn("data plane events dropped: the queue is full", "dropped", p.dropped)
			p.lastLog, p.dropped = time.Now(), 0
		}
		p.mu.Unlock()
	}
	return nil
}

// scriptFailed logs a DataScript's error with its stack and publishes
// DATASCRIPT_ERROR, at most once a second per virtual service.
func (p *publisher) scriptFailed(vs string, se *datascript.ScriptError) {
	p.mu.Lock()
	now := time.Now()
	due := now.Sub(p.errLast[vs]) >= time.Second
	if due {
		p.errLast[vs] = now
	}
	p.mu.Unlock()
	if !due {
		return
	}
	p.log.Error("DataScript failed", "virtual_service", vs, "datascript", se.Set, "event", se.Evt, "err", se.Err, "stack", se.Stack)
	_ = p.event("DATASCRIPT_ERROR", "virtualservice", vs, map[string]any{
		"datascript_error_details": map[string]any{
			"datascript": se.Set, "virtual_service": vs, "event": se.Evt,
			"error": se.Err, "stack_trace": se.Stack,
		},
	})
}

// txnPool reuses Txns between requests.
var txnPool = sync.Pool{New: func() any { return new(datascript.Txn) }}
