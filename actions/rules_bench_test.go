package actions

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/events"
	"github.com/vigilhq/vigil/vigiltest"
)

// benchRig is a rules service on an embedded NATS server, for benchmarks.
type benchRig struct {
	bus   *events.Bus
	store *config.Store
	svc   *Service
	// lat is from the engine receiving an event to its decision saved,
	// e2e from the event's time (just before its publish) to the same;
	// all from the engine receiving any event to every AlertConfig it
	// matched having decided (at once for one that matched none).
	lat, e2e, all latencies
}

type latencies struct {
	mu sync.Mutex
	d  []time.Duration
	n  atomic.Int64
}

func (l *latencies) add(d time.Duration) {
	l.n.Add(1)
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) pct(p float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// benchConfigs returns n AlertConfigs over 100 custom event ids, each a
// rolling window of 5 in 60s per object, with a CEL condition on the
// event's details: the configs of an event id split the values 0-9 of a
// detail that is 0-99, so that about 10% of the events match one config
// and update its window.
func benchConfigs(n int) []*config.Object {
	var objs []*config.Object
	per := max(n/100, 1)
	width := max(10/per, 1)
	for i := range n {
		id := fmt.Sprintf("BENCH_%03d", i%100)
		lo := (i / 100) * width
		spec := fmt.Sprintf(`{"custom_events": [%q], "events": [%q], "condition": "details.bench.v >= %d && details.bench.v < %d && obj_type == 'pool'",
			"category": "rolling_window", "threshold": 5, "window": "60s", "group_by": ["obj_name"]}`,
			id, id, lo, lo+width)
		objs = append(objs, &config.Object{Kind: KindAlertConfig, Name: fmt.Sprintf("cfg-%04d", i), Spec: []byte(spec)})
	}
	return objs
}

func newBenchRig(b *testing.B, configs int) *benchRig {
	b.Helper()
	ctx := context.Background()
	bus := testBus(b)
	store, err := config.OpenStore(ctx, bus.Conn(), bus.JetStream(), config.StoreOptions{Registry: config.Kinds})
	if err != nil {
		b.Fatal(err)
	}
	objs := benchConfigs(configs)
	for i := 0; i < len(objs); i += 100 {
		if _, err := store.Apply(ctx, objs[i:min(i+100, len(objs))], config.ApplyOptions{User: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
	r := &benchRig{bus: bus, store: store}
	r.restart(b)
	b.Cleanup(func() { r.svc.Stop() })
	for configs > 0 && r.svc.Engine().Rule(fmt.Sprintf("cfg-%04d", configs-1)) == nil {
		time.Sleep(10 * time.Millisecond)
	}
	return r
}

// restart starts a new service on the rig's bus.
func (r *benchRig) restart(b *testing.B) {
	ctx := context.Background()
	svc, err := NewService(ctx, ServiceOptions{
		JS: r.bus.JetStream(), Store: r.store, Events: r.bus,
		OnDecision: func(_ *Decision, ev *events.Event, received time.Time) {
			r.lat.add(time.Since(received))
			r.e2e.add(time.Since(ev.Time))
		},
		OnEventDecided: func(received time.Time, _ int) { r.all.add(time.Since(received)) },
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		b.Fatal(err)
	}
	r.svc = svc
}

// benchEvent is one event of the mix: a random event id of the 100, a
// random v, one of objects pools.
func benchEvent(b *testing.B, rng *rand.Rand, objects int, now time.Time) *events.Event {
	ev, err := events.New(fmt.Sprintf("BENCH_%03d", rng.IntN(100)), "pool", fmt.Sprintf("pool-%d", rng.IntN(objects)),
		map[string]any{"bench": map[string]any{"v": rng.IntN(100)}}, "/bench", now)
	if err != nil {
		b.Fatal(err)
	}
	return ev
}

// drained waits until the rules consumer has acknowledged every event
// up to the stream's last.
func (r *benchRig) drained(b *testing.B, timeout time.Duration) {
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	for {
		s, err := r.bus.JetStream().Stream(ctx, events.EventsStream)
		if err != nil {
			b.Fatal(err)
		}
		c, err := r.bus.JetStream().Consumer(ctx, events.EventsStream, RulesConsumer)
		if err != nil {
			b.Fatal(err)
		}
		ci, err := c.Info(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if ci.AckFloor.Stream >= s.CachedInfo().State.LastSeq && ci.NumAckPending == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("not drained after %s: ack floor %d of %d, %d pending", timeout, ci.AckFloor.Stream, s.CachedInfo().State.LastSeq, ci.NumAckPending)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// publishAll publishes evs asynchronously and waits for every ack.
func (r *benchRig) publishAll(b *testing.B, evs []*events.Event) {
	js := r.bus.JetStream()
	for _, ev := range evs {
		if _, err := r.bus.PublishAsync(ev); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(2 * time.Minute):
		b.Fatal("publish acks did not come")
	}
}

// BenchmarkRulesThroughput: durable events through JetStream and the
// rules engine, with 100 and 1,000 AlertConfigs over 100 event ids, about
// 10% of the events matching one and updating its window state in the KV
// bucket. Each event is acknowledged after its state is written.
//
// events/s is the engine's rate on a backlog of 100,000 stored events (the
// engine alone on the cores); events/s-with-publisher is the rate with the
// same number published meanwhile from this process. configs=1 (one event
// id in 100 looked at) shows what JetStream itself costs.
func BenchmarkRulesThroughput(b *testing.B) {
	for _, configs := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("configs=%d", configs), func(b *testing.B) {
			r := newBenchRig(b, configs)
			rng := rand.New(rand.NewPCG(1, uint64(configs)))
			const n = 100_000
			now := time.Now()
			batch := func() []*events.Event {
				evs := make([]*events.Event, n)
				for i := range evs {
					evs[i] = benchEvent(b, rng, 1000, now)
				}
				return evs
			}
			b.ResetTimer()
			for range b.N {
				// A backlog: the engine stopped while the events were stored.
				evs := batch()
				r.svc.Stop()
				r.publishAll(b, evs)
				handled := r.svc.Handled()
				r.restart(b) // it consumes once its AlertConfigs are compiled
				cpu := vigiltest.ReadCPUTimes()
				start := time.Now()
				r.drained(b, 5*time.Minute)
				b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
				b.ReportMetric(100*float64(r.svc.Handled()+handled)/float64(n), "%matched")

				// Published meanwhile.
				evs = batch()
				start = time.Now()
				r.publishAll(b, evs)
				r.drained(b, 5*time.Minute)
				b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s-with-publisher")
				b.ReportMetric(cpu.StealSince(), "%steal")
			}
		})
	}
}

// BenchmarkRulesDecisionLatency: events published at 5,000/s with 1,000
// AlertConfigs; the time from the engine receiving an event to its
// decision being saved, for the events that match (ms-p50, ms-p99), the
// same from the time the event was due to be published (-from-publish:
// events are made ahead on a fixed schedule, so a late publish counts
// too), and for every event,
// matching or not, until all its decisions are saved (-every-event).
func BenchmarkRulesDecisionLatency(b *testing.B) {
	r := newBenchRig(b, 1000)
	rng := rand.New(rand.NewPCG(2, 2))
	b.StopTimer()
	const rate, seconds = 5000, 10
	var steal float64 // the most of any iteration
	for range b.N {
		// The events are made ahead, each stamped with the time it is due
		// to be sent, so that a late send counts against the engine (no
		// coordinated omission) and the publisher's own work stays out of
		// the measured path.
		const n = rate * seconds
		start := time.Now().Add(time.Second)
		// They are kept as their subject and bytes, and each nats.Msg
		// (whose header map the publish fills) is made as it is sent and
		// let go after: 50,000 messages held in the heap for the whole run
		// would make every GC cycle of the process, the engine's included,
		// mark them, which is the benchmark's cost, not the engine's.
		type due struct {
			id, subject string
			data        []byte
			at          time.Time
		}
		evs := make([]due, n)
		for i := range evs {
			at := start.Add(time.Duration(i) * time.Second / rate)
			ev := benchEvent(b, rng, 1000, at)
			msg, err := events.EncodeMsg(ev)
			if err != nil {
				b.Fatal(err)
			}
			evs[i] = due{ev.ID, msg.Subject, msg.Data, at}
		}
		b.StartTimer()
		cpu := vigiltest.ReadCPUTimes()
		tick := time.NewTicker(time.Millisecond)
		for sent := 0; sent < n; {
			now := <-tick.C
			for ; sent < n && !evs[sent].at.After(now); sent++ {
				d := evs[sent]
				msg := &nats.Msg{Subject: d.subject, Data: d.data, Header: nats.Header{}}
				if _, err := r.bus.PublishMsgAsync(d.id, msg); err != nil {
					b.Fatal(err)
				}
				evs[sent] = due{}
			}
		}
		tick.Stop()
		<-r.bus.JetStream().PublishAsyncComplete()
		r.drained(b, time.Minute)
		b.StopTimer()
		steal = max(steal, cpu.StealSince())
	}
	b.ReportMetric(float64(r.lat.pct(0.5).Microseconds())/1000, "ms-p50")
	b.ReportMetric(float64(r.lat.pct(0.99).Microseconds())/1000, "ms-p99")
	b.ReportMetric(float64(r.e2e.pct(0.5).Microseconds())/1000, "ms-p50-from-publish")
	b.ReportMetric(float64(r.e2e.pct(0.99).Microseconds())/1000, "ms-p99-from-publish")
	b.ReportMetric(float64(r.all.pct(0.99).Microseconds())/1000, "ms-p99-every-event")
	b.ReportMetric(float64(r.lat.n.Load())/float64(b.N), "decisions")
	b.ReportMetric(steal, "%steal")
}

// BenchmarkRulesMemory: 100,000 group keys (one match each on distinct
// objects); reports the process's Go heap (which holds the embedded NATS
// server too) and the size of the state bucket.
func BenchmarkRulesMemory(b *testing.B) {
	r := newBenchRig(b, 100)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const keys = 100_000
	now := time.Now()
	for range b.N {
		evs := make([]*events.Event, 0, keys)
		for i := range keys {
			// cfg-0000 matches BENCH_000 with v == 0.
			ev, err := events.New("BENCH_000", "pool", fmt.Sprintf("k-%d", i), map[string]any{"bench": map[string]any{"v": 0}}, "/bench", now)
			if err != nil {
				b.Fatal(err)
			}
			evs = append(evs, ev)
		}
		r.publishAll(b, evs)
		r.drained(b, 5*time.Minute)
	}
	b.StopTimer()
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	kv, err := r.bus.JetStream().Stream(context.Background(), "KV_"+StateBucket)
	if err != nil {
		b.Fatal(err)
	}
	info, err := kv.Info(context.Background(), jetstream.WithSubjectFilter(""))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(info.State.Msgs), "keys")
	b.ReportMetric(float64(info.State.Bytes)/(1<<20), "MB-state-bucket")
	b.ReportMetric(float64(after.HeapInuse)/(1<<20), "MB-heap-after")
	b.ReportMetric((float64(after.HeapInuse)-float64(before.HeapInuse))/(1<<20), "MB-heap-growth")
}

// BenchmarkActionsDelivered: every event raises an action (throttle 0)
// delivered to a webhook receiver on loopback: actions/s from the events'
// publish to the last delivery, each through the outbox, the actions
// stream and an HTTP request, with its outcome recorded.
func BenchmarkActionsDelivered(b *testing.B) {
	ctx := context.Background()
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got.Add(1)
	}))
	b.Cleanup(srv.Close)
	r := newBenchRig(b, 0)
	objs, err := config.ParseObjects(strings.NewReader(fmt.Sprintf(`
kind: ActionGroup
name: hook
spec:
  webhooks: [{url: %s}]
---
kind: AlertConfig
name: every
spec:
  events: [SERVER_DOWN]
  throttle: 0s
  action_group: hook
`, srv.URL)), "bench.yaml")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := r.store.Apply(ctx, objs, config.ApplyOptions{User: "bench"}); err != nil {
		b.Fatal(err)
	}
	for r.svc.Engine().Rule("every") == nil || r.svc.group("hook") == nil {
		time.Sleep(10 * time.Millisecond)
	}
	const n = 5000
	b.ResetTimer()
	for range b.N {
		got.Store(0)
		evs := make([]*events.Event, n)
		for i := range evs {
			ev, err := events.New("SERVER_DOWN", "pool", fmt.Sprintf("p%d", i%100), nil, "/bench", time.Now())
			if err != nil {
				b.Fatal(err)
			}
			evs[i] = ev
		}
		start := time.Now()
		r.publishAll(b, evs)
		for got.Load() < n {
			if time.Since(start) > 5*time.Minute {
				b.Fatalf("%d of %d delivered", got.Load(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.ReportMetric(n/time.Since(start).Seconds(), "actions/s")
	}
}

// BenchmarkMatchStoredEvent: what the engine does for each stored event before
// any state is read: decode it and run it through the 10 AlertConfigs of
// its event id (of 1,000), about 10% matching one. It shows the
// allocations per event, which set how often the garbage collector runs
// in a busy engine.
func BenchmarkMatchStoredEvent(b *testing.B) {
	byID := map[string][]*Rule{}
	for _, o := range benchConfigs(1000) {
		spec, err := DecodeAlertConfig(o.Spec)
		if err != nil {
			b.Fatal(err)
		}
		r, err := CompileRule(o.Name, spec)
		if err != nil {
			b.Fatal(err)
		}
		id := spec.Events[0]
		byID[id] = append(byID[id], r)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	type stored struct {
		id   string
		data []byte
	}
	evs := make([]stored, 1000)
	for i := range evs {
		ev := benchEvent(b, rng, 1000, time.Now())
		msg, err := events.EncodeMsg(ev)
		if err != nil {
			b.Fatal(err)
		}
		evs[i] = stored{ev.Data.EventID, msg.Data}
	}
	matched := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s := evs[i%len(evs)]
		rules := byID[s.id]
		ev, err := decodeStored(s.data, rules, false)
		if err != nil {
			b.Fatal(err)
		}
		var vars *eventVars
		for _, r := range rules {
			m, err := r.MatchWith(ev, &vars)
			if err != nil {
				b.Fatal(err)
			}
			if m.Raise {
				matched++
			}
		}
	}
	b.ReportMetric(100*float64(matched)/float64(b.N), "%matched")
}
