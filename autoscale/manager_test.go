package autoscale

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil/config"
	_ "github.com/vigilhq/vigil/dataplane" // registers Pool
	"github.com/vigilhq/vigil/dataplane/spec"
	"github.com/vigilhq/vigil/events"
)

func dur(d time.Duration) *config.Duration { c := config.Duration(d); return &c }

func servers(n int) []spec.Server {
	out := make([]spec.Server, n)
	for i := range out {
		out[i] = spec.Server{IP: fmt.Sprintf("10.0.0.%d", i+1), Port: 8080, Hostname: fmt.Sprintf("web-%d", i+1)}
	}
	return out
}

func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	pol := &Policy{
		MinSize: 1, MaxSize: 4, MaxScaleoutStep: 2, MaxScaleinStep: 2,
		ScaleoutCooldown: dur(time.Minute), ScaleinCooldown: dur(2 * time.Minute),
	}
	op := func(dir string, n int, deadline time.Duration, ids ...ServerID) Operation {
		return Operation{RequestID: "r-" + dir, Direction: dir, Count: n, Servers: ids, Started: t0.Add(-time.Minute), Deadline: t0.Add(deadline)}
	}
	id := func(i int) ServerID {
		return ServerID{IP: IPAddr{Addr: fmt.Sprintf("10.0.0.%d", i), Type: "V4"}, Port: 8080, Hostname: fmt.Sprintf("web-%d", i)}
	}
	for _, tc := range []struct {
		name     string
		size     int
		st       State
		dir      string
		decision string
		count    int
		reason   string
		cands    []ServerID
	}{
		{name: "out by the step", size: 1, dir: Out, decision: DecisionScaleOut, count: 2},
		{name: "out clamped to max", size: 3, dir: Out, decision: DecisionScaleOut, count: 1},
		{name: "out at max", size: 4, dir: Out, decision: DecisionSkipped, reason: "at max_size 4 (4 servers, 0 being added)"},
		{name: "out in cooldown", size: 1, dir: Out, st: State{LastScaleout: t0.Add(-59 * time.Second)}, decision: DecisionSkipped, reason: "scale-out cooldown until 2026-11-26T12:00:01Z"},
		{name: "out after cooldown", size: 1, dir: Out, st: State{LastScaleout: t0.Add(-time.Minute)}, decision: DecisionScaleOut, count: 2},
		{name: "a scale-in's cooldown does not hold a scale-out", size: 1, dir: Out, st: State{LastScalein: t0}, decision: DecisionScaleOut, count: 2},
		{name: "in flight counts toward max", size: 2, dir: Out, st: State{InFlight: []Operation{op(Out, 1, time.Minute)}}, decision: DecisionScaleOut, count: 1},
		{name: "in flight reaching max", size: 2, dir: Out, st: State{InFlight: []Operation{op(Out, 2, time.Minute)}}, decision: DecisionSkipped, reason: "at max_size 4 (2 servers, 2 being added)"},
		{name: "expired operation does not count", size: 2, dir: Out, st: State{InFlight: []Operation{op(Out, 2, 0)}}, decision: DecisionScaleOut, count: 2},
		{name: "in blocked by an out in flight", size: 3, dir: In, st: State{InFlight: []Operation{op(Out, 1, time.Minute)}}, decision: DecisionSkipped, reason: "a scale-out is in flight (request r-out, until 2026-11-26T12:01:00Z)"},
		{name: "in takes the last servers", size: 4, dir: In, decision: DecisionScaleIn, count: 2, cands: []ServerID{id(4), id(3)}},
		{name: "in clamped to min", size: 2, dir: In, decision: DecisionScaleIn, count: 1, cands: []ServerID{id(2)}},
		{name: "in at min", size: 1, dir: In, decision: DecisionSkipped, reason: "at min_size 1 (1 servers, 0 being removed)"},
		{name: "in cooldown", size: 4, dir: In, st: State{LastScalein: t0.Add(-time.Minute)}, decision: DecisionSkipped, reason: "scale-in cooldown until 2026-11-26T12:01:00Z"},
		{name: "in takes scaled-out servers first", size: 4, dir: In, st: State{ScaledOut: []ServerID{id(2)}}, decision: DecisionScaleIn, count: 2, cands: []ServerID{id(2), id(4)}},
		{name: "in skips servers being removed", size: 4, dir: In, st: State{InFlight: []Operation{op(In, 1, time.Minute, id(4))}}, decision: DecisionScaleIn, count: 2, cands: []ServerID{id(3), id(2)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := &spec.Pool{Servers: servers(tc.size)}
			st := tc.st
			res := Decide(pol, pool, &st, tc.dir, t0)
			if res.Decision != tc.decision || res.Count != tc.count {
				t.Fatalf("got %s of %d (%s), want %s of %d", res.Decision, res.Count, res.Reason, tc.decision, tc.count)
			}
			if tc.reason != "" && res.Reason != tc.reason {
				t.Fatalf("reason %q, want %q", res.Reason, tc.reason)
			}
			if tc.cands != nil && fmt.Sprint(res.Candidates) != fmt.Sprint(tc.cands) {
				t.Fatalf("candidates %v, want %v", res.Candidates, tc.cands)
			}
		})
	}
}

func TestPolicyValidation(t *testing.T) {
	for spec, want := range map[string]string{
		`{"min_size": 1, "max_size": 3, "scaleout_alertconfigs": ["load"]}`:                                  "",
		`{"max_size": 3, "scalein_alertconfigs": ["idle"], "scalein_cooldown": "0s", "max_scalein_step": 2}`: "",
		`{"min_size": 4, "max_size": 3, "scaleout_alertconfigs": ["load"]}`:                                  "spec.min_size: 4 is above max_size 3",
		`{"max_size": 0, "scaleout_alertconfigs": ["load"]}`:                                                 "spec.max_size: must be 1 to 400, got 0",
		`{"max_size": 401, "scaleout_alertconfigs": ["load"]}`:                                               "spec.max_size: must be 1 to 400, got 401",
		`{"max_size": 3}`: "spec: names no AlertConfig",
		`{"max_size": 3, "scaleout_alertconfigs": ["load"], "scalein_alertconfigs": ["load"]}`: `spec.scalein_alertconfigs[0]: AlertConfig "load" is already listed as spec.scaleout_alertconfigs[0]`,
		`{"max_size": 3, "scaleout_alertconfigs": [""]}`:                                       "spec.scaleout_alertconfigs[0]: is empty",
		`{"max_size": 3, "scaleout_alertconfigs": ["a"], "scaleout_cooldown": "-1s"}`:          `spec.scaleout_cooldown: duration "-1s" is negative`,
		`{"max_size": 3, "scaleout_alertconfigs": ["a"], "max_scaleout_step": -1}`:             "spec.max_scaleout_step",
		`{"max_size": 3, "scaleout_alertconfigs": ["a"], "cooldown": "1s"}`:                    "cooldown",
		`{"max_size": "three", "scaleout_alertconfigs": ["a"]}`:                                "spec.max_size",
	} {
		_, err := ParsePolicy(json.RawMessage(spec))
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", spec, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: got %v, want %q", spec, err, want)
		}
	}
	p, _ := ParsePolicy(json.RawMessage(`{"max_size": 3, "scaleout_alertconfigs": ["a"]}`))
	if o, i := p.Cooldowns(); o != 300*time.Second || i != 300*time.Second {
		t.Fatalf("default cooldowns %v %v", o, i)
	}
	if o, i := p.Steps(); o != 1 || i != 1 {
		t.Fatalf("default steps %d %d", o, i)
	}
}

// rig is a real embedded bus and store.
type rig struct {
	t     *testing.T
	bus   *events.Bus
	store *config.Store
	now   time.Time
	mu    sync.Mutex
}

func newRig(t *testing.T) *rig {
	t.Helper()
	bus, err := events.StartBus(context.Background(), events.BusOptions{StoreDir: filepath.Join(t.TempDir(), "js")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Stop)
	st, err := config.OpenStore(context.Background(), bus.Conn(), bus.JetStream(), config.StoreOptions{Registry: config.Kinds})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, bus: bus, store: st, now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
}

func (r *rig) clock() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.now
}

func (r *rig) advance(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.now = r.now.Add(d)
}

func (r *rig) apply(kind, name, spec string) {
	r.t.Helper()
	obj := &config.Object{Kind: kind, Name: name, Spec: json.RawMessage(spec)}
	if _, err := r.store.Apply(context.Background(), []*config.Object{obj}, config.ApplyOptions{User: "test"}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) manager() *Manager {
	r.t.Helper()
	m, err := New(context.Background(), Options{Store: r.store, JS: r.bus.JetStream(), Events: r.bus, Now: r.clock})
	if err != nil {
		r.t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(m.Stop)
	return m
}

func (r *rig) events(id string) []events.Event {
	r.t.Helper()
	stored, _, err := r.bus.List(context.Background(), events.Filter{EventID: id})
	if err != nil {
		r.t.Fatal(err)
	}
	out := make([]events.Event, len(stored))
	for i, s := range stored {
		if err := json.Unmarshal(s.Data, &out[i]); err != nil {
			r.t.Fatal(err)
		}
	}
	return out
}

// report publishes a script's report of an operation on pool web: event
// id, its details under key.
func (r *rig) report(id, key string, info map[string]any) {
	r.t.Helper()
	ev, err := events.New(id, "pool", "web", map[string]any{key: info}, "test", time.Now())
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.bus.Publish(context.Background(), ev); err != nil {
		r.t.Fatal(err)
	}
}

// waitState waits up to 5 s for pool web's state under m to satisfy ok;
// what names the wait in the failure.
func (r *rig) waitState(m *Manager, what string, ok func(*State) bool) *State {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _ := m.State(context.Background(), "web")
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s: %+v", what, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *rig) setup(size int) {
	b, _ := json.Marshal(spec.Pool{Servers: servers(size), AutoscalePolicy: "web-policy"})
	r.apply(spec.KindPool, "web", string(b))
	r.apply(KindAutoscalePolicy, "web-policy", `{"min_size": 1, "max_size": 3, "scaleout_alertconfigs": ["web-load"],
		"scalein_alertconfigs": ["web-idle"], "scaleout_cooldown": "60s", "scalein_cooldown": "60s", "operation_timeout": "10m"}`)
}

func trigger(key, cfg string) Trigger {
	return Trigger{Key: key, AlertConfig: cfg, ObjType: "pool", ObjName: "web", Reason: "pool web: load", ServersUp: -1}
}

// TestScaleOutEventAndRedelivery: a scale-out alert gives one
// SERVER_AUTOSCALE_OUT with Avi's details; the same trigger delivered
// again gives the same decision and no second event, even after the
// cooldown.
func TestScaleOutEventAndRedelivery(t *testing.T) {
	r := newRig(t)
	r.setup(1)
	m := r.manager()
	ctx := context.Background()
	res, err := m.Trigger(ctx, trigger("act-1", "web-load"))
	if err != nil || res.Decision != DecisionScaleOut || res.Count != 1 || res.RequestID == "" {
		t.Fatalf("decision %+v, %v", res, err)
	}
	if !strings.HasPrefix(res.String(), "autoscale: scale-out of 1 server(s), request "+res.RequestID) {
		t.Fatalf("String %q", res.String())
	}
	r.advance(2 * time.Minute)
	again, err := m.Trigger(ctx, trigger("act-1", "web-load"))
	if err != nil || again.RequestID != res.RequestID || again.Decision != DecisionScaleOut {
		t.Fatalf("again %+v, %v", again, err)
	}
	evs := r.events("SERVER_AUTOSCALE_OUT")
	if len(evs) != 1 {
		t.Fatalf("%d SERVER_AUTOSCALE_OUT events", len(evs))
	}
	ev := evs[0]
	if ev.ID != res.RequestID || ev.Data.ObjType != "pool" || ev.Data.ObjName != "web" || ev.Data.Module != "AUTOSCALE_MGR" || ev.Data.ObjUUID == "" {
		t.Fatalf("event %+v", ev)
	}
	var info map[string]any
	if err := json.Unmarshal(ev.Data.EventDetails["server_autoscaleout_info"], &info); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"num_scaleout_servers": 1.0, "pool": "web", "pool_ref": "/api/v1/objects/Pool/web", "alertconfig_name": "web-load",
		"request_id": res.RequestID, "num_servers_up": 1.0, "reason": "pool web: load",
	} {
		if info[k] != want {
			t.Errorf("server_autoscaleout_info.%s = %v, want %v", k, info[k], want)
		}
	}
	st, _ := m.State(ctx, "web")
	if len(st.InFlight) != 1 || st.InFlight[0].RequestID != res.RequestID {
		t.Fatalf("in flight %+v", st.InFlight)
	}
	// Once the operation has ended (here: past its timeout), a late
	// redelivery returns the decision and publishes nothing.
	rec := &counting{Publisher: r.bus}
	m.opts.Events = rec
	r.advance(11 * time.Minute)
	late, err := m.Trigger(ctx, trigger("act-1", "web-load"))
	if err != nil || late.RequestID != res.RequestID || rec.n.Load() != 0 {
		t.Fatalf("late redelivery %+v, %v; %d publishes", late, err, rec.n.Load())
	}
}

// counting is a Publisher that counts what it publishes.
type counting struct {
	Publisher
	n atomic.Int32
}

func (c *counting) Publish(ctx context.Context, ev *events.Event) (events.PublishResult, error) {
	c.n.Add(1)
	return c.Publisher.Publish(ctx, ev)
}

// TestCooldownMaxAndReports: cooldown and max_size hold; a scale-out
// reported complete stops counting as in flight; scale-in names its
// candidates and stops at min_size.
func TestCooldownMaxAndReports(t *testing.T) {
	r := newRig(t)
	r.setup(1)
	m := r.manager()
	ctx := context.Background()
	first, err := m.Trigger(ctx, trigger("a1", "web-load"))
	if err != nil || first.Count != 1 {
		t.Fatalf("%+v %v", first, err)
	}
	r.advance(30 * time.Second)
	if res, _ := m.Trigger(ctx, trigger("a2", "web-load")); res.Decision != DecisionSkipped || !strings.Contains(res.Reason, "cooldown") {
		t.Fatalf("in cooldown: %+v", res)
	}
	// A scale-in while the scale-out is in flight waits.
	r.advance(31 * time.Second)
	if res, _ := m.Trigger(ctx, trigger("a3", "web-idle")); res.Decision != DecisionSkipped || !strings.Contains(res.Reason, "scale-out is in flight") {
		t.Fatalf("in while out in flight: %+v", res)
	}
	// The script adds the server and reports.
	b, _ := json.Marshal(spec.Pool{Servers: servers(2), AutoscalePolicy: "web-policy"})
	r.apply(spec.KindPool, "web", string(b))
	r.report("SERVER_AUTOSCALE_OUT_COMPLETE", "server_autoscaleout_complete_info", map[string]any{
		"nscaleout": 1, "request_id": first.RequestID,
		"scaled_out_servers": []any{map[string]any{"ip": map[string]any{"addr": "10.0.0.2", "type": "V4"}, "port": 8080, "hostname": "web-2"}},
	})
	st := r.waitState(m, "still in flight after the report", func(st *State) bool { return len(st.InFlight) == 0 })
	if len(st.ScaledOut) != 1 || st.ScaledOut[0].IP.Addr != "10.0.0.2" {
		t.Fatalf("scaled out %+v", st.ScaledOut)
	}
	second, err := m.Trigger(ctx, trigger("a4", "web-load"))
	if err != nil || second.Count != 1 {
		t.Fatalf("second scale-out %+v %v", second, err)
	}
	// 2 servers + 1 in flight = max_size 3.
	r.advance(2 * time.Minute)
	if res, _ := m.Trigger(ctx, trigger("a5", "web-load")); res.Decision != DecisionSkipped || !strings.Contains(res.Reason, "at max_size 3") {
		t.Fatalf("at max: %+v", res)
	}
	// The operation times out (10m) unreported: a scale-in may go.
	r.advance(11 * time.Minute)
	in, err := m.Trigger(ctx, trigger("a6", "web-idle"))
	if err != nil || in.Decision != DecisionScaleIn || in.Count != 1 || len(in.Candidates) != 1 || in.Candidates[0].Hostname != "web-2" {
		t.Fatalf("scale-in %+v %v", in, err)
	}
	evs := r.events("SERVER_AUTOSCALE_IN")
	if len(evs) != 1 {
		t.Fatalf("%d SERVER_AUTOSCALE_IN", len(evs))
	}
	var info struct {
		N          int        `json:"num_scalein_servers"`
		Candidates []ServerID `json:"scalein_server_candidates"`
	}
	if err := json.Unmarshal(evs[0].Data.EventDetails["server_autoscalein_info"], &info); err != nil || info.N != 1 ||
		len(info.Candidates) != 1 || info.Candidates[0].IP.Addr != "10.0.0.2" || info.Candidates[0].IP.Type != "V4" || info.Candidates[0].Port != 8080 {
		t.Fatalf("server_autoscalein_info %s (%v)", evs[0].Data.EventDetails["server_autoscalein_info"], err)
	}
	if got := len(r.events("SERVER_AUTOSCALE_OUT")); got != 2 {
		t.Fatalf("%d SERVER_AUTOSCALE_OUT, want 2", got)
	}
	// The scale-in's report forgets the server it removed.
	r.report("SERVER_AUTOSCALE_IN_COMPLETE", "server_autoscalein_complete_info", map[string]any{
		"nscalein": 1, "request_id": in.RequestID,
		"scaled_in_servers": []any{map[string]any{"ip": map[string]any{"addr": "10.0.0.2", "type": "V4"}, "port": 8080}},
	})
	r.waitState(m, "after the scale-in's report", func(st *State) bool { return len(st.InFlight) == 0 && len(st.ScaledOut) == 0 })
}

// TestConfigErrors: what the config cannot serve is an ErrConfig that
// names the object.
func TestConfigErrors(t *testing.T) {
	r := newRig(t)
	m := r.manager()
	ctx := context.Background()
	check := func(tr Trigger, want string) {
		t.Helper()
		_, err := m.Trigger(ctx, tr)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), want) {
			t.Fatalf("got %v, want ErrConfig with %q", err, want)
		}
	}
	check(trigger("k", "web-load"), "Pool web does not exist")
	r.apply(spec.KindPool, "web", `{"servers": [{"ip": "10.0.0.1"}]}`)
	check(trigger("k", "web-load"), "Pool web has no autoscale_policy")
	r.apply(spec.KindPool, "web", `{"servers": [{"ip": "10.0.0.1"}], "autoscale_policy": "nope"}`)
	check(trigger("k", "web-load"), "AutoscalePolicy nope does not exist")
	r.setup(1)
	check(trigger("k", "other"), "AutoscalePolicy web-policy lists AlertConfig other in neither")
	tr := trigger("k", "web-load")
	tr.ObjType = "virtualservice"
	check(tr, `autoscale needs alerts on a pool, this one is on virtualservice "web"`)
	tr = trigger("k", "web-load")
	tr.Resolve = true
	if res, err := m.Trigger(ctx, tr); err != nil || res.Decision != DecisionSkipped {
		t.Fatalf("resolve: %+v %v", res, err)
	}
	if n := len(r.events("SERVER_AUTOSCALE_OUT")); n != 0 {
		t.Fatalf("%d events", n)
	}
}

// TestInstancesDecideAsOne: two managers on one bucket, each given
// different alerts at once, never take the pool past max_size.
func TestInstancesDecideAsOne(t *testing.T) {
	r := newRig(t)
	r.setup(1)
	r.apply(KindAutoscalePolicy, "web-policy", `{"min_size": 1, "max_size": 3, "scaleout_alertconfigs": ["web-load"], "scaleout_cooldown": "0s"}`)
	a, b := r.manager(), r.manager()
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for i := range 20 {
		m := a
		if i%2 == 1 {
			m = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := m.Trigger(context.Background(), trigger(fmt.Sprintf("k%d", i), "web-load"))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			total += res.Count
			mu.Unlock()
		}()
	}
	wg.Wait()
	if total != 2 {
		t.Fatalf("%d servers asked for, want 2 (1 server, max_size 3)", total)
	}
	if n := len(r.events("SERVER_AUTOSCALE_OUT")); n != 2 {
		t.Fatalf("%d events, want 2", n)
	}
}

// TestReportWhileNoManagerRuns: a script's report published while vigil's
// manager is stopped (vigil restarting, say) is applied when managers start
// again, here two sharing the stream's consumer.
func TestReportWhileNoManagerRuns(t *testing.T) {
	r := newRig(t)
	r.setup(1)
	m := r.manager()
	ctx := context.Background()
	op, err := m.Trigger(ctx, trigger("a1", "web-load"))
	if err != nil || op.Count != 1 {
		t.Fatalf("%+v %v", op, err)
	}
	m.Stop()
	r.report("SERVER_AUTOSCALE_OUT_COMPLETE", "server_autoscaleout_complete_info", map[string]any{
		"nscaleout": 1, "request_id": op.RequestID,
		"scaled_out_servers": []any{map[string]any{"ip": map[string]any{"addr": "10.0.0.2", "type": "V4"}, "port": 8080}},
	})
	time.Sleep(200 * time.Millisecond)
	if st, _ := m.State(ctx, "web"); len(st.InFlight) != 1 {
		t.Fatalf("applied with no manager running: %+v", st)
	}
	a, _ := r.manager(), r.manager()
	r.waitState(a, "the report was not applied after the restart", func(st *State) bool {
		return len(st.InFlight) == 0 && len(st.ScaledOut) == 1 && st.ScaledOut[0].IP.Addr == "10.0.0.2"
	})
}
