package schedule

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/events"
	"github.com/vigilhq/vigil/runner"
)

func testBus(tb testing.TB) *events.Bus {
	tb.Helper()
	bus, err := events.StartBus(context.Background(), events.BusOptions{StoreDir: filepath.Join(tb.TempDir(), "js")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(bus.Stop)
	return bus
}

func testStore(tb testing.TB, bus *events.Bus) *config.Store {
	tb.Helper()
	st, err := config.OpenStore(context.Background(), bus.Conn(), bus.JetStream(), config.StoreOptions{Registry: config.Kinds})
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func apply(tb testing.TB, st *config.Store, name, spec string) {
	tb.Helper()
	obj := &config.Object{Kind: KindSchedule, Name: name, Spec: json.RawMessage(spec)}
	if _, err := st.Apply(context.Background(), []*config.Object{obj}, config.ApplyOptions{User: "test"}); err != nil {
		tb.Fatal(err)
	}
}

// recorder is a Publisher that keeps what it published, in front of the
// bus.
type recorder struct {
	next Publisher
	mu   sync.Mutex
	evs  []*events.Event
}

func (r *recorder) Publish(ctx context.Context, ev *events.Event) (events.PublishResult, error) {
	res, err := r.next.Publish(ctx, ev)
	if err == nil {
		r.mu.Lock()
		r.evs = append(r.evs, ev)
		r.mu.Unlock()
	}
	return res, err
}

// of returns the events with this event id.
func (r *recorder) of(eventID string) []*events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*events.Event
	for _, ev := range r.evs {
		if ev.Data.EventID == eventID {
			out = append(out, ev)
		}
	}
	return out
}

// instancePublisher tags each event it forwards with its instance.
type instancePublisher struct {
	rec      *recorder
	instance string
	count    atomic.Int64
}

func (p *instancePublisher) Publish(ctx context.Context, ev *events.Event) (events.PublishResult, error) {
	p.count.Add(1)
	return p.rec.Publish(ctx, ev)
}

// fakeScripts records run requests; err, when set, fails them.
type fakeScripts struct {
	mu   sync.Mutex
	reqs []runner.RunRequest
	err  error
}

func (f *fakeScripts) Submit(_ context.Context, req runner.RunRequest) (*runner.Execution, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	f.reqs = append(f.reqs, req)
	return &runner.Execution{ID: req.ID, Script: req.Script, Status: runner.StatusQueued}, nil
}

func (f *fakeScripts) requests() []runner.RunRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]runner.RunRequest(nil), f.reqs...)
}

func start(tb testing.TB, opts Options) *Service {
	tb.Helper()
	s, err := New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Stop)
	return s
}

func waitFor(tb testing.TB, what string, timeout time.Duration, f func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !f() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func slotOf(tb testing.TB, ev *events.Event) time.Time {
	tb.Helper()
	s, _ := ev.Extensions["scheduleslot"].(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		tb.Fatalf("event %s has no slot: %v", ev.ID, ev.Extensions)
	}
	return t
}

// bySlot counts events per slot and returns the slots in order.
func bySlot(tb testing.TB, evs []*events.Event) ([]time.Time, map[time.Time]int) {
	tb.Helper()
	n := map[time.Time]int{}
	var slots []time.Time
	for _, ev := range evs {
		s := slotOf(tb, ev)
		if n[s] == 0 {
			slots = append(slots, s)
		}
		n[s]++
	}
	sort.Slice(slots, func(i, j int) bool { return slots[i].Before(slots[j]) })
	return slots, n
}

// TestTwoInstancesFireEachSlotOnce: a schedule every second on two
// services sharing one NATS fires each slot once, with no gap.
func TestTwoInstancesFireEachSlotOnce(t *testing.T) {
	t.Parallel()
	bus := testBus(t)
	st := testStore(t, bus)
	apply(t, st, "tick", `{"cron": "@every 1s", "publish_event": {"event_id": "TICK", "details": {"n": 1}}}`)
	rec := &recorder{next: bus}
	pubs := []*instancePublisher{{rec: rec, instance: "a"}, {rec: rec, instance: "b"}}
	var svcs []*Service
	for _, p := range pubs {
		svcs = append(svcs, start(t, Options{Store: st, Publisher: p, JS: bus.JetStream(), Instance: p.instance}))
	}
	time.Sleep(5 * time.Second)
	for _, s := range svcs {
		s.Stop()
	}

	ticks := rec.of("TICK")
	slots, n := bySlot(t, ticks)
	if len(slots) < 4 {
		t.Fatalf("%d slots fired in 5s, want at least 4", len(slots))
	}
	for _, s := range slots {
		if n[s] != 1 {
			t.Errorf("slot %s fired %d times", s, n[s])
		}
	}
	for i := 1; i < len(slots); i++ {
		if d := slots[i].Sub(slots[i-1]); d != time.Second {
			t.Errorf("gap of %s before slot %s", d, slots[i])
		}
	}
	for _, ev := range ticks {
		if ev.ID != EventID("tick", slotOf(t, ev)) || ev.Data.ObjType != ObjType || ev.Data.ObjName != "tick" || ev.Data.ObjUUID == "" {
			t.Errorf("event %s: %+v", ev.ID, ev.Data)
		}
	}
	oks, okN := bySlot(t, rec.of("SCHEDULER_ACTION_SUCCESS"))
	if len(oks) != len(slots) {
		t.Errorf("%d SCHEDULER_ACTION_SUCCESS for %d slots", len(oks), len(slots))
	}
	for _, s := range oks {
		if okN[s] != 1 {
			t.Errorf("slot %s: %d results", s, okN[s])
		}
	}
	if len(rec.of("SCHEDULER_ACTION_FAILURE")) != 0 {
		t.Error("failures published")
	}
	// Which instance won is up to the race; report the split.
	t.Logf("%d slots; events published by a: %d, by b: %d", len(slots), pubs[0].count.Load(), pubs[1].count.Load())

	// Each run is recorded as the schedule's last.
	last, err := LastRun(context.Background(), bus.JetStream(), "tick")
	if err != nil || last == nil || !last.Slot.Equal(slots[len(slots)-1]) || last.Status != StatusSucceeded || last.EventID != EventID("tick", last.Slot) {
		t.Errorf("last run %+v, %v; last slot %s", last, err, slots[len(slots)-1])
	}
}

// TestControlScript: each slot queues the script once with an execution
// id derived from the slot and an alert shaped like Avi's.
func TestControlScript(t *testing.T) {
	t.Parallel()
	bus := testBus(t)
	st := testStore(t, bus)
	apply(t, st, "cleanup", `{"cron": "@every 1s", "controlscript": "purge"}`)
	rec := &recorder{next: bus}
	scripts := &fakeScripts{}
	s := start(t, Options{Store: st, Publisher: rec, Scripts: scripts, JS: bus.JetStream(), Instance: "a"})
	waitFor(t, "two runs", 5*time.Second, func() bool { return len(scripts.requests()) >= 2 })
	waitFor(t, "two results", 5*time.Second, func() bool { return len(rec.of("SCHEDULER_ACTION_SUCCESS")) >= 2 })
	s.Stop()

	reqs := scripts.requests()
	for i, req := range reqs {
		var alert map[string]any
		if err := json.Unmarshal(req.Alert, &alert); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"name", "level", "reason", "obj_name", "obj_uuid", "threshold", "throttle_count", "events"} {
			if _, ok := alert[k]; !ok {
				t.Errorf("alert has no %s: %s", k, req.Alert)
			}
		}
		var a Alert
		if err := json.Unmarshal(req.Alert, &a); err != nil {
			t.Fatal(err)
		}
		if len(a.Events) != 1 {
			t.Fatalf("alert events: %s", req.Alert)
		}
		ev := a.Events[0]
		info, ok := ev.EventDetails[DetailsKey]
		if !ok || len(ev.EventDetails) != 1 {
			t.Fatalf("event_details must hold exactly %s: %s", DetailsKey, req.Alert)
		}
		slot, err := time.Parse(time.RFC3339Nano, info.Slot)
		if err != nil {
			t.Fatal(err)
		}
		if req.ID != ExecutionID("cleanup", slot) || info.ExecutionID != req.ID {
			t.Errorf("request %d: id %s, want %s", i, req.ID, ExecutionID("cleanup", slot))
		}
		if req.Script != "purge" || req.Trigger != runner.TriggerSchedule || req.User != "schedule:cleanup" {
			t.Errorf("request %d: %+v", i, req)
		}
		if a.ObjName != "cleanup" || a.ObjUUID == "" || ev.EventID != RunEventID || ev.ObjName != "cleanup" ||
			ev.ReportTimestamp != slot.Unix() || info.SchedulerName != "cleanup" || info.SchedulerUUID != a.ObjUUID ||
			info.ControlScript != "purge" || a.Level != "ALERT_LOW" {
			t.Errorf("alert %d: %s", i, req.Alert)
		}
		if i > 0 && req.ID == reqs[i-1].ID {
			t.Error("two slots with one execution id")
		}
	}

	// SCHEDULER_ACTION_SUCCESS carries the execution id.
	res := rec.of("SCHEDULER_ACTION_SUCCESS")[0]
	var details map[string]ActionInfo
	raw, _ := json.Marshal(res.Data.EventDetails)
	if err := json.Unmarshal(raw, &details); err != nil {
		t.Fatal(err)
	}
	info := details[DetailsKey]
	slot := slotOf(t, res)
	if res.Data.ObjType != "schedule" || res.Data.ObjName != "cleanup" || info.Status != StatusSucceeded ||
		info.Action != ActionControlScript || info.ExecutionID != ExecutionID("cleanup", slot) || info.SchedulerName != "cleanup" ||
		info.Slot != slot.Format(time.RFC3339Nano) || res.Data.Module != "CONFIG" {
		t.Errorf("result %+v %+v", res.Data, info)
	}
}

// TestFailure: a ControlScript that cannot be queued, or no runner, gives
// SCHEDULER_ACTION_FAILURE and a failed last run.
func TestFailure(t *testing.T) {
	t.Parallel()
	bus := testBus(t)
	st := testStore(t, bus)
	apply(t, st, "broken", `{"cron": "@every 1s", "controlscript": "missing"}`)
	apply(t, st, "orphan", `{"cron": "@every 1s", "controlscript": "anything"}`)
	rec := &recorder{next: bus}
	scripts := &fakeScripts{err: fmt.Errorf("ControlScript/missing: %w", config.ErrNotFound)}
	s1 := start(t, Options{Store: st, Publisher: rec, Scripts: scripts, JS: bus.JetStream(), Instance: "a"})
	waitFor(t, "a failure", 5*time.Second, func() bool { return len(rec.of("SCHEDULER_ACTION_FAILURE")) >= 2 })
	s1.Stop()

	var sawBroken bool
	for _, ev := range rec.of("SCHEDULER_ACTION_FAILURE") {
		raw, _ := json.Marshal(ev.Data.EventDetails)
		var d map[string]ActionInfo
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		if info := d[DetailsKey]; ev.Data.ObjName == "broken" {
			sawBroken = true
			if info.Status != StatusFailed || info.Error == "" || info.ExecutionID == "" {
				t.Errorf("failure details %+v", info)
			}
		}
	}
	if !sawBroken {
		t.Error("no failure for the broken schedule")
	}
	stat, ok := s1.Status("broken")
	if !ok || stat.LastRun == nil || stat.LastRun.Status != StatusFailed || stat.LastRun.Error == "" {
		t.Errorf("status %+v", stat)
	}

	// No runner in this process: each slot fails, and says why.
	rec2 := &recorder{next: bus}
	s2 := start(t, Options{Store: st, Publisher: rec2, JS: bus.JetStream(), Instance: "b"})
	waitFor(t, "a failure without runner", 5*time.Second, func() bool {
		st, ok := s2.Status("orphan")
		return ok && st.LastRun != nil && st.LastRun.Instance == "b"
	})
	stat, _ = s2.Status("orphan")
	if stat.LastRun.Status != StatusFailed || stat.LastRun.Error == "" {
		t.Errorf("without runner: %+v", stat.LastRun)
	}
}

// TestStatus: last and next run, disabled schedules, deletes.
func TestStatus(t *testing.T) {
	t.Parallel()
	bus := testBus(t)
	st := testStore(t, bus)
	apply(t, st, "tick", `{"cron": "@every 1s", "publish_event": {"event_id": "TICK"}}`)
	apply(t, st, "off", `{"cron": "@daily", "timezone": "Europe/Paris", "publish_event": {"event_id": "TICK"}, "enabled": false}`)
	apply(t, st, "hourly", `{"cron": "0 * * * *", "publish_event": {"event_id": "TICK"}}`)
	s := start(t, Options{Store: st, Publisher: &recorder{next: bus}, JS: bus.JetStream()})
	waitFor(t, "a run", 5*time.Second, func() bool {
		st, ok := s.Status("tick")
		return ok && st.LastRun != nil
	})
	tick, _ := s.Status("tick")
	if !tick.Enabled || tick.NextRun == nil || !tick.NextRun.After(tick.LastRun.Slot) || tick.NextRun.Sub(tick.LastRun.Slot) > 2*time.Second ||
		tick.Action != ActionPublishEvent || tick.Cron != "@every 1s" || tick.Timezone != "UTC" || tick.Missed != MissedSkip {
		t.Errorf("tick %+v", tick)
	}
	off, ok := s.Status("off")
	if !ok || off.Enabled || off.NextRun != nil || off.Timezone != "Europe/Paris" {
		t.Errorf("off %+v", off)
	}
	hourly, _ := s.Status("hourly")
	if hourly.NextRun == nil || hourly.NextRun.Minute() != 0 || hourly.NextRun.Second() != 0 || time.Until(*hourly.NextRun) > time.Hour {
		t.Errorf("hourly %+v", hourly)
	}
	if _, ok := s.Status("nope"); ok {
		t.Error("status of an unknown schedule")
	}
	if got, ok := s.ObjectStatus(KindSchedule, "tick"); !ok || got.(Status).Name != "tick" {
		t.Errorf("ObjectStatus %v %v", got, ok)
	}
	if _, ok := s.ObjectStatus("Pool", "tick"); ok {
		t.Error("ObjectStatus of another kind")
	}
	list := s.List()
	if len(list) != 3 || list[0].Name != "hourly" || list[1].Name != "off" || list[2].Name != "tick" {
		t.Errorf("list %+v", list)
	}
	b, _ := json.Marshal(tick)
	var back map[string]any
	_ = json.Unmarshal(b, &back)
	if back["last_run"] == nil || back["next_run"] == nil {
		t.Errorf("json %s", b)
	}

	if _, err := st.Delete(context.Background(), []config.Ref{{Kind: KindSchedule, Name: "tick"}}, config.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the delete", 5*time.Second, func() bool { _, ok := s.Status("tick"); return !ok })
	waitFor(t, "the last run forgotten", 5*time.Second, func() bool {
		r, err := LastRun(context.Background(), bus.JetStream(), "tick")
		return err == nil && r == nil
	})
}

// TestMissedPolicies: the last runs were recorded 10 slots before now
// (all instances down since); two services starting together run what
// each policy says, each slot once.
func TestMissedPolicies(t *testing.T) {
	t.Parallel()
	bus := testBus(t)
	st := testStore(t, bus)
	for name, p := range map[string]string{"skip": `"missed": "skip"`, "once": `"missed": "once"`, "catchup": `"missed": "catch_up", "catch_up_limit": 3`} {
		apply(t, st, name, `{"cron": "@every 1m", "publish_event": {"event_id": "TICK"}, `+p+`}`)
	}
	// The last slot before the schedules were applied does not count
	// (they did not exist then): take the first one after.
	sc := compile(t, `{"cron": "@every 1m", "controlscript": "x"}`)
	last := sc.Next(time.Now())
	slot := func(i int) time.Time { return last.Add(time.Duration(i) * time.Minute) }
	ctx := context.Background()
	store, err := openStore(ctx, bus.JetStream(), 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"skip", "once", "catchup"} {
		if err := store.record(ctx, name, &Run{Slot: last, Time: last, Status: StatusSucceeded, Action: ActionPublishEvent}); err != nil {
			t.Fatal(err)
		}
	}
	now := slot(10).Add(30 * time.Second)
	clock := func() time.Time { return now }
	rec := &recorder{next: bus}
	var svcs []*Service
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, inst := range []string{"a", "b"} {
		s, err := New(Options{Store: st, Publisher: rec, JS: bus.JetStream(), Instance: inst, Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			if err := s.Start(ctx); err != nil {
				t.Error(err)
			}
			mu.Lock()
			svcs = append(svcs, s)
			mu.Unlock()
		})
		t.Cleanup(s.Stop)
	}
	wg.Wait()
	want := map[string][]time.Time{"once": {slot(10)}, "catchup": {slot(1), slot(2), slot(3)}}
	waitFor(t, "the missed slots", 10*time.Second, func() bool { return len(rec.of("SCHEDULER_ACTION_SUCCESS")) >= 4 })
	time.Sleep(300 * time.Millisecond) // any extra run would show by now
	for _, s := range svcs {
		s.Stop()
	}

	got := map[string][]time.Time{}
	for _, ev := range rec.of("TICK") {
		got[ev.Data.ObjName] = append(got[ev.Data.ObjName], slotOf(t, ev))
		if ev.Extensions["schedulemissed"] != true {
			t.Errorf("event %s not marked missed", ev.ID)
		}
	}
	for _, name := range []string{"skip", "once", "catchup"} {
		g := got[name]
		sort.Slice(g, func(i, j int) bool { return g[i].Before(g[j]) })
		if fmt.Sprint(g) != fmt.Sprint(want[name]) {
			t.Errorf("%s: ran %v, want %v", name, g, want[name])
		}
	}
	if n := len(rec.of("SCHEDULER_ACTION_SUCCESS")); n != 4 {
		t.Errorf("%d results, want 4", n)
	}
	for name, w := range map[string]time.Time{"skip": last, "once": slot(10), "catchup": slot(3)} {
		r, err := LastRun(ctx, bus.JetStream(), name)
		if err != nil || r == nil || !r.Slot.Equal(w) {
			t.Errorf("%s: last run %+v (%v), want slot %s", name, r, err, w)
		}
	}
	for _, s := range svcs {
		if st, _ := s.Status("catchup"); st.NextRun == nil || !st.NextRun.Equal(slot(11)) || st.LastRun == nil || !st.LastRun.Slot.Equal(slot(3)) {
			t.Errorf("status %+v", st)
		}
	}
}

// TestCatchUpAfterRestart: two services fire a schedule every second,
// both stop, and come back ten seconds later (their clock jumps): the
// three oldest missed slots run once each, then the schedule goes on.
func TestCatchUpAfterRestart(t *testing.T) {
	t.Parallel()
	bus := testBus(t)
	st := testStore(t, bus)
	apply(t, st, "tick", `{"cron": "@every 1s", "publish_event": {"event_id": "TICK"}, "missed": "catch_up", "catch_up_limit": 3}`)
	rec := &recorder{next: bus}
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	run := func() []*Service {
		var svcs []*Service
		for _, inst := range []string{"a", "b"} {
			svcs = append(svcs, start(t, Options{Store: st, Publisher: rec, JS: bus.JetStream(), Instance: inst, Clock: clock}))
		}
		return svcs
	}
	first := run()
	waitFor(t, "two slots", 5*time.Second, func() bool { return len(rec.of("TICK")) >= 2 })
	for _, s := range first {
		s.Stop()
	}
	lastRun, err := LastRun(context.Background(), bus.JetStream(), "tick")
	if err != nil || lastRun == nil {
		t.Fatal(lastRun, err)
	}
	before := len(rec.of("TICK"))

	offset.Store(int64(10 * time.Second))
	second := run()
	waitFor(t, "catch-up and two live slots", 8*time.Second, func() bool { return len(rec.of("TICK")) >= before+5 })
	for _, s := range second {
		s.Stop()
	}

	slots, n := bySlot(t, rec.of("TICK"))
	for _, s := range slots {
		if n[s] != 1 {
			t.Errorf("slot %s fired %d times", s, n[s])
		}
	}
	var missed []time.Time
	for _, ev := range rec.of("TICK") {
		if ev.Extensions["schedulemissed"] == true {
			missed = append(missed, slotOf(t, ev))
		}
	}
	sort.Slice(missed, func(i, j int) bool { return missed[i].Before(missed[j]) })
	want := []time.Time{lastRun.Slot.Add(time.Second), lastRun.Slot.Add(2 * time.Second), lastRun.Slot.Add(3 * time.Second)}
	if fmt.Sprint(missed) != fmt.Sprint(want) {
		t.Errorf("caught up %v, want %v (last run %s)", missed, want, lastRun.Slot)
	}
	// Live slots resumed after the jump, with no gap.
	var live []time.Time
	for _, s := range slots {
		if s.After(lastRun.Slot.Add(5 * time.Second)) {
			live = append(live, s)
		}
	}
	if len(live) < 2 {
		t.Fatalf("live slots after restart: %v", live)
	}
	for i := 1; i < len(live); i++ {
		if live[i].Sub(live[i-1]) != time.Second {
			t.Errorf("gap before %s", live[i])
		}
	}
}

// TestClaim: of two instances creating a slot's key, one wins; a claim
// left unfinished is taken over once it is stale, a finished one never.
func TestClaim(t *testing.T) {
	t.Parallel()
	bus := testBus(t)
	ctx := context.Background()
	st, err := openStore(ctx, bus.JetStream(), 1)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			rev, err := st.claim(ctx, "race.1", claim{Instance: fmt.Sprint(i), Claimed: now}, time.Hour, StaleClaim)
			if err != nil {
				t.Error(err)
			}
			if rev != 0 {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d winners", wins.Load())
	}

	rev, err := st.claim(ctx, "dead.1", claim{Instance: "a", Claimed: now}, time.Hour, StaleClaim)
	if err != nil || rev == 0 {
		t.Fatal(rev, err)
	}
	if r, _ := st.claim(ctx, "dead.1", claim{Instance: "b", Claimed: now.Add(time.Second)}, time.Hour, StaleClaim); r != 0 {
		t.Error("a fresh claim was taken over")
	}
	later := claim{Instance: "b", Claimed: now.Add(StaleClaim + time.Second)}
	r1, err1 := st.claim(ctx, "dead.1", later, time.Hour, StaleClaim)
	r2, _ := st.claim(ctx, "dead.1", claim{Instance: "c", Claimed: later.Claimed}, time.Hour, StaleClaim)
	if err1 != nil || r1 == 0 || r2 != 0 {
		t.Errorf("stale claim: b %d (%v), c %d", r1, err1, r2)
	}
	if err := st.finish(ctx, "dead.1", claim{Instance: "a"}, rev, time.Hour); err == nil {
		t.Error("the dead instance finished a claim taken over")
	}
	if err := st.finish(ctx, "dead.1", later, r1, time.Hour); err != nil {
		t.Fatal(err)
	}
	if r, _ := st.claim(ctx, "dead.1", claim{Instance: "d", Claimed: now.Add(time.Hour)}, time.Hour, StaleClaim); r != 0 {
		t.Error("a finished claim was taken over")
	}

	// The run record never goes back to an earlier slot.
	if err := st.record(ctx, "s", &Run{Slot: now}); err != nil {
		t.Fatal(err)
	}
	if err := st.record(ctx, "s", &Run{Slot: now.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if r, _ := LastRun(ctx, bus.JetStream(), "s"); r == nil || !r.Slot.Equal(now) {
		t.Errorf("last run %+v", r)
	}
}

func TestNewRequires(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without a store")
	}
}

// TestFallBehind: when the clock jumps while a service runs, the latest
// due slot fires and the ones skipped over follow the policy (once: the
// latest of them).
func TestFallBehind(t *testing.T) {
	t.Parallel()
	bus := testBus(t)
	st := testStore(t, bus)
	apply(t, st, "tick", `{"cron": "@every 1s", "publish_event": {"event_id": "TICK"}, "missed": "once"}`)
	rec := &recorder{next: bus}
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	s := start(t, Options{Store: st, Publisher: rec, JS: bus.JetStream(), Clock: clock})
	waitFor(t, "a slot", 5*time.Second, func() bool { return len(rec.of("TICK")) >= 1 })
	offset.Store(int64(30 * time.Second))
	waitFor(t, "slots after the jump", 5*time.Second, func() bool {
		for _, ev := range rec.of("TICK") {
			if slotOf(t, ev).After(time.Now().Add(25 * time.Second)) {
				return true
			}
		}
		return false
	})
	s.Stop()
	slots, n := bySlot(t, rec.of("TICK"))
	var missed int
	for _, ev := range rec.of("TICK") {
		if ev.Extensions["schedulemissed"] == true {
			missed++
		}
	}
	for _, sl := range slots {
		if n[sl] != 1 {
			t.Errorf("slot %s fired %d times", sl, n[sl])
		}
	}
	// Before the jump: a slot or two; then one missed slot (the one just
	// before the latest) and the latest; nothing of the 28 in between.
	if missed != 1 || len(slots) > 6 {
		t.Errorf("%d slots, %d missed: %v", len(slots), missed, slots)
	}
}
