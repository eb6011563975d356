package actions

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigilhq/vigil/events"
)

// scenario drives an Engine with one AlertConfig under synctest's fake
// clock: the engine's Now is time.Now, which moves only when the test
// sleeps, and every event's time is set by the test.
type scenario struct {
	t    *testing.T
	e    *Engine
	n    int
	base time.Time
}

func newScenario(t *testing.T, spec string) *scenario {
	t.Helper()
	r := rule(t, spec)
	sc := &scenario{t: t, base: time.Now()}
	ids := 0
	sc.e = &Engine{Now: time.Now, Store: NewMemoryStore(), NewID: func() string { ids++; return fmt.Sprintf("alert-%d", ids) }}
	sc.e.SetRules([]*Rule{r})
	return sc
}

// send publishes event id on pool name, timed at offset from the start,
// and returns the engine's decision for it (zero when none).
func (sc *scenario) send(id, name string, at time.Duration) Decision {
	sc.t.Helper()
	sc.n++
	ev, err := events.New(id, "pool", name, nil, "/test", sc.base.Add(at))
	if err != nil {
		sc.t.Fatal(err)
	}
	ev.ID = fmt.Sprintf("ev-%d", sc.n)
	return sc.resend(ev)
}

func (sc *scenario) resend(ev *events.Event) Decision {
	sc.t.Helper()
	ds, errs := sc.e.Handle(ev)
	if len(errs) > 0 {
		sc.t.Fatal(errs)
	}
	if len(ds) > 1 {
		sc.t.Fatalf("%d decisions for one config", len(ds))
	}
	if len(ds) == 0 {
		return Decision{}
	}
	return ds[0]
}

func TestEngineRealtime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := newScenario(t, `{"events": ["SERVER_DOWN"], "throttle": "10m"}`)
		d := sc.send("SERVER_DOWN", "web", 0)
		if !d.Act || d.Alert == nil || d.Alert.State != StateOn || d.Alert.ID != "alert-1" || d.Alert.Level != LevelLow {
			t.Fatalf("first event: %+v %+v", d, d.Alert)
		}
		if d.Alert.Summary != "r: 1 x SERVER_DOWN on pool web" {
			t.Errorf("summary %q", d.Alert.Summary)
		}
		if d := sc.send("POOL_DOWN", "web", time.Second); d.Alert != nil || d.Act {
			t.Errorf("another event id matched: %+v", d)
		}
	})
}

// TestEngineRollingWindow: 3 in 60s fires; 2 in 60s does not; 3 spread
// over 61s do not.
func TestEngineRollingWindow(t *testing.T) {
	spec := `{"events": ["SERVER_DOWN"], "category": "rolling_window", "threshold": 3, "window": "60s"}`
	synctest.Test(t, func(t *testing.T) {
		sc := newScenario(t, spec)
		for i, at := range []time.Duration{0, 20 * time.Second} {
			if d := sc.send("SERVER_DOWN", "web", at); d.Act || d.Alert != nil {
				t.Fatalf("event %d fired: %+v", i, d)
			}
		}
		if d := sc.send("SERVER_DOWN", "web", 59*time.Second); !d.Act || len(d.Alert.Events) != 3 {
			t.Fatalf("3rd within 60s (the alert carries the 3): %+v %+v", d, d.Alert)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		sc := newScenario(t, spec)
		for i, at := range []time.Duration{0, 30 * time.Second, 61 * time.Second} {
			if d := sc.send("SERVER_DOWN", "web", at); d.Act {
				t.Fatalf("event %d at %s fired: 3 spread over 61s", i, at)
			}
		}
		if d := sc.send("SERVER_DOWN", "web", 62*time.Second); !d.Act {
			t.Fatalf("30s, 61s and 62s are 3 within 60s: %+v", d)
		}
	})
}

// TestEngineThrottle: inside the throttle a match only counts; after it
// the actions run again, carrying the count.
func TestEngineThrottle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := newScenario(t, `{"events": ["SERVER_DOWN"], "throttle": "600s"}`)
		if d := sc.send("SERVER_DOWN", "web", 0); !d.Act {
			t.Fatal("first event did not act")
		}
		time.Sleep(5 * time.Minute)
		d := sc.send("SERVER_DOWN", "web", 5*time.Minute)
		if d.Act || !d.Throttled || d.Alert.State != StateThrottled || d.Alert.ThrottleCount != 1 || len(d.Alert.Events) != 2 {
			t.Fatalf("inside the throttle: %+v %+v", d, d.Alert)
		}
		time.Sleep(5 * time.Minute)
		d = sc.send("SERVER_DOWN", "web", 10*time.Minute)
		if !d.Act || d.Alert.State != StateOn || d.Alert.ThrottleCount != 1 || d.Alert.ID != "alert-1" {
			t.Fatalf("after the throttle: %+v %+v", d, d.Alert)
		}
	})
}

// TestEngineResolveAndExpiry: the resolve event resolves the alert; the
// next match raises a new one; an alert past its expiry is removed.
func TestEngineResolveAndExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := newScenario(t, `{"events": ["SERVER_DOWN"], "resolve_events": ["SERVER_UP"], "expiry": "1h"}`)
		sc.send("SERVER_DOWN", "web", 0)
		d := sc.send("SERVER_UP", "web", time.Second)
		if !d.Resolved || d.Act || d.Alert.State != StateResolved {
			t.Fatalf("resolve: %+v %+v", d, d.Alert)
		}
		if d := sc.send("SERVER_UP", "web", 2*time.Second); d.Resolved {
			t.Error("resolved twice")
		}
		d = sc.send("SERVER_DOWN", "web", 3*time.Second)
		if !d.Act || d.Alert.ID != "alert-2" {
			t.Fatalf("after resolve: %+v %+v", d, d.Alert)
		}
		time.Sleep(59 * time.Minute)
		if gone, err := sc.e.Expire(); err != nil || len(gone) != 0 {
			t.Fatalf("expired early: %v %v", gone, err)
		}
		time.Sleep(time.Minute)
		gone, err := sc.e.Expire()
		if err != nil || len(gone) != 1 || gone[0].ID != "alert-2" {
			t.Fatalf("expire: %v %v", gone, err)
		}
		if d := sc.send("SERVER_DOWN", "web", time.Hour); !d.Act || d.Alert.ID != "alert-3" {
			t.Errorf("after expiry: %+v", d)
		}
	})
}

// TestEngineGroupsApart: two objects have two alerts and two windows.
func TestEngineGroupsApart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := newScenario(t, `{"events": ["SERVER_DOWN"], "category": "rolling_window", "threshold": 2, "window": "60s"}`)
		sc.send("SERVER_DOWN", "web", 0)
		if d := sc.send("SERVER_DOWN", "api", time.Second); d.Act {
			t.Fatal("one event of each object fired")
		}
		a := sc.send("SERVER_DOWN", "web", 2*time.Second)
		b := sc.send("SERVER_DOWN", "api", 3*time.Second)
		if !a.Act || !b.Act || a.Alert.ID == b.Alert.ID || a.Key == b.Key || a.Alert.ObjName != "web" || b.Alert.ObjName != "api" {
			t.Fatalf("two objects: %+v / %+v", a.Alert, b.Alert)
		}
	})
}

// TestEngineOrderLatenessDuplicates: an event out of order inside the
// lateness bound counts where it belongs; one beyond it is dropped; a
// repeated delivery is dropped; a burst at one instant counts each event.
func TestEngineOrderLatenessDuplicates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := newScenario(t, `{"events": ["SERVER_DOWN"], "category": "rolling_window", "threshold": 3, "window": "60s"}`)
		sc.send("SERVER_DOWN", "web", 100*time.Second)
		if d := sc.send("SERVER_DOWN", "web", 30*time.Second); d.Dropped != "late" {
			t.Fatalf("70s behind, beyond the 60s bound: %+v", d)
		}
		sc.send("SERVER_DOWN", "web", 50*time.Second) // 50s behind: counts, inside the window (40s, 100s]
		ev, _ := events.New("SERVER_DOWN", "pool", "web", nil, "/test", sc.base.Add(60*time.Second))
		ev.ID = "ev-fixed"
		if d := sc.resend(ev); !d.Act {
			t.Fatalf("3rd event in the window, out of order: %+v", d)
		}
		if d := sc.resend(ev); d.Dropped != "duplicate" || d.Act || d.Throttled {
			t.Fatalf("repeated delivery: %+v", d)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		sc := newScenario(t, `{"events": ["SERVER_DOWN"], "category": "rolling_window", "threshold": 50, "window": "1s"}`)
		acts := 0
		for i := range 100 {
			d := sc.send("SERVER_DOWN", "web", 0)
			if d.Act {
				acts++
				if i != 49 {
					t.Errorf("fired at event %d of the burst", i)
				}
			}
		}
		st, _, _ := sc.e.Store.Load("r", `["pool","web"]`)
		if acts != 1 || st.Alert.ThrottleCount != 50 || len(st.Hits) != 50 {
			t.Errorf("burst of 100: %d actions, throttle_count %d, %d hits kept", acts, st.Alert.ThrottleCount, len(st.Hits))
		}
	})
}

// TestEngineModes: Event-Driven Ansible's once_within, once_after and
// accumulate_within, each keyed by group.
func TestEngineModes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := newScenario(t, `{"events": ["SERVER_DOWN"], "mode": {"once_within": "5m"}}`)
		if d := sc.send("SERVER_DOWN", "web", 0); !d.Act {
			t.Fatal("once_within: the first match did not act")
		}
		if d := sc.send("SERVER_DOWN", "api", 0); !d.Act {
			t.Fatal("once_within: another group's first match did not act")
		}
		time.Sleep(4 * time.Minute)
		if d := sc.send("SERVER_DOWN", "web", 4*time.Minute); d.Act || !d.Throttled || d.Alert.ThrottleCount != 1 {
			t.Fatalf("once_within: a match inside 5m: %+v %+v", d, d.Alert)
		}
		time.Sleep(time.Minute)
		if d := sc.send("SERVER_DOWN", "web", 5*time.Minute); !d.Act || len(d.Alert.Events) != 3 {
			t.Fatalf("once_within: a match after 5m: %+v %+v", d, d.Alert)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		sc := newScenario(t, `{"events": ["SERVER_DOWN"], "mode": {"once_after": "1m"}}`)
		for i := range 3 {
			if d := sc.send("SERVER_DOWN", "web", time.Duration(i)*time.Second); d.Act {
				t.Fatalf("once_after: match %d acted before the time was up", i)
			}
			time.Sleep(time.Second)
		}
		if ds, err := sc.e.Due(); err != nil || len(ds) != 0 {
			t.Fatalf("once_after: due early: %v %v", ds, err)
		}
		time.Sleep(time.Minute)
		ds, err := sc.e.Due()
		if err != nil || len(ds) != 1 || !ds[0].Act || len(ds[0].Alert.Events) != 3 {
			t.Fatalf("once_after: %+v %v", ds, err)
		}
		if ds, _ := sc.e.Due(); len(ds) != 0 {
			t.Fatalf("once_after acted twice: %+v", ds)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		sc := newScenario(t, `{"events": ["SERVER_DOWN"], "category": "rolling_window", "threshold": 3, "mode": {"accumulate_within": "10m"}}`)
		sc.send("SERVER_DOWN", "web", 0)
		sc.send("SERVER_DOWN", "web", 0)
		time.Sleep(10 * time.Minute) // the window from the first match is over
		if d := sc.send("SERVER_DOWN", "web", 10*time.Minute); d.Act {
			t.Fatal("accumulate_within: 3 matches over more than 10m acted")
		}
		sc.send("SERVER_DOWN", "api", 10*time.Minute)
		sc.send("SERVER_DOWN", "web", 10*time.Minute)
		if d := sc.send("SERVER_DOWN", "web", 10*time.Minute); !d.Act {
			t.Fatalf("accumulate_within: 3 matches within 10m: %+v", d)
		}
	})
}

// TestEngineSilence: inside a silence the alert is recorded but its
// actions are held back; after it, the next match acts.
// TestEngineOnceAfterSilenced: a once_after group whose time comes inside
// a silence records its alert and holds back the actions.
func TestEngineOnceAfterSilenced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := newScenario(t, `{"events": ["SERVER_DOWN"], "mode": {"once_after": "1m"}}`)
		ends := time.Now().Add(30 * time.Minute).UTC().Format(time.RFC3339)
		sil, err := CompileSilence("upgrade", json.RawMessage(`{"matchers": [{"field": "obj_name", "value": "web"}], "ends": "`+ends+`", "comment": "upgrade"}`))
		if err != nil {
			t.Fatal(err)
		}
		sc.send("SERVER_DOWN", "web", 0)
		sc.send("SERVER_DOWN", "api", 0)
		sc.e.SetSilences([]*Silence{sil})
		time.Sleep(2 * time.Minute)
		ds, err := sc.e.Due()
		if err != nil || len(ds) != 2 {
			t.Fatalf("due: %+v %v", ds, err)
		}
		for _, d := range ds {
			web := d.Alert.ObjName == "web"
			if d.Act == web || (d.Silenced == "upgrade") != web {
				t.Errorf("%s: act %v silenced %q", d.Alert.ObjName, d.Act, d.Silenced)
			}
		}
	})
}

func TestEngineSilence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := newScenario(t, `{"events": ["SERVER_DOWN"], "throttle": "1h"}`)
		ends := time.Now().Add(30 * time.Minute).UTC().Format(time.RFC3339)
		sil, err := CompileSilence("maintenance", json.RawMessage(`{"matchers": [{"field": "obj_name", "op": "=~", "value": "web-.*"}, {"field": "config", "value": "r"}], "ends": "`+ends+`", "comment": "rolling upgrade"}`))
		if err != nil {
			t.Fatal(err)
		}
		sc.e.SetSilences([]*Silence{sil})
		d := sc.send("SERVER_DOWN", "web-1", 0)
		if d.Act || d.Silenced != "maintenance" || d.Alert == nil || d.Alert.State != StateOn {
			t.Fatalf("inside the silence: %+v %+v", d, d.Alert)
		}
		if d := sc.send("SERVER_DOWN", "api", 0); !d.Act || d.Silenced != "" {
			t.Fatalf("another object: %+v", d)
		}
		time.Sleep(30 * time.Minute)
		if d := sc.send("SERVER_DOWN", "web-1", 30*time.Minute); !d.Act || d.Silenced != "" || d.Alert.ID != "alert-1" {
			t.Fatalf("after the silence: %+v %+v", d, d.Alert)
		}
	})
}

// TestEngineOutboxBound: a group whose requests are not being queued
// refuses further acting decisions instead of growing its state; the
// event fails and comes again.
func TestEngineOutboxBound(t *testing.T) {
	old := MaxOutbox
	MaxOutbox = 3
	t.Cleanup(func() { MaxOutbox = old })
	synctest.Test(t, func(t *testing.T) {
		sc := newScenario(t, `{"events": ["SERVER_DOWN"], "throttle": "0s"}`)
		n := 0
		sc.e.Plan = func(r *Rule, d *Decision) ([]Outbound, []ActionOutcome, error) {
			n++
			return []Outbound{{Key: fmt.Sprintf("k%d", n), Data: []byte(`{}`)}}, nil, nil
		}
		for i := range 3 {
			if d := sc.send("SERVER_DOWN", "web", time.Duration(i)*time.Second); !d.Act || len(d.Out) != 1 {
				t.Fatalf("decision %d: %+v", i, d)
			}
		}
		ev, err := events.New("SERVER_DOWN", "pool", "web", nil, "/test", sc.base.Add(3*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		_, errs := sc.e.Handle(ev)
		if len(errs) != 1 || !errors.Is(errs[0], ErrOutboxFull) {
			t.Fatalf("4th acting decision: %v, want ErrOutboxFull", errs)
		}
		st, _, _ := sc.e.Store.Load("r", `["pool","web"]`)
		if len(st.Outbox) != 3 || slices.Contains(st.Seen, ev.ID) {
			t.Fatalf("state after the refusal: %d in the outbox, seen %v", len(st.Outbox), st.Seen)
		}
	})
}

// TestEngineWindowKeepsNewestEvents: a window far above MaxAlertEvents
// keeps every hit's time but only the newest events, in time order, late
// ones included; the alert it raises carries those.
func TestEngineWindowKeepsNewestEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := newScenario(t, `{"events": ["SERVER_DOWN"], "category": "rolling_window", "threshold": 50, "window": "1h"}`)
		for i := range 49 {
			at := time.Duration(i+10) * time.Second
			if i == 48 {
				at = 5 * time.Second // late, older than every kept event
			}
			if d := sc.send("SERVER_DOWN", "web", at); d.Act {
				t.Fatalf("event %d acted", i)
			}
		}
		st, _, _ := sc.e.Store.Load("r", `["pool","web"]`)
		if len(st.Hits) != 49 || len(st.Recent) != MaxAlertEvents {
			t.Fatalf("%d hits, %d events kept", len(st.Hits), len(st.Recent))
		}
		d := sc.send("SERVER_DOWN", "web", 100*time.Second)
		if !d.Act || len(d.Alert.Events) != MaxAlertEvents {
			t.Fatalf("50th: act %v, %d events", d.Act, len(d.Alert.Events))
		}
		for i := 1; i < len(d.Alert.Events); i++ {
			if d.Alert.Events[i].ReportTimestamp < d.Alert.Events[i-1].ReportTimestamp {
				t.Fatalf("events out of order at %d", i)
			}
		}
		if last := d.Alert.Events[len(d.Alert.Events)-1].ReportTimestamp; last != sc.base.Add(100*time.Second).Unix() {
			t.Fatalf("newest event %d, want the 50th", last)
		}
	})
}

// TestEngineBoundsKeptDetails: an alert keeps a marker, not the details,
// of an event whose details are over MaxKeptDetails; the condition still
// saw them whole.
func TestEngineBoundsKeptDetails(t *testing.T) {
	r := rule(t, `{"events": ["SERVER_DOWN"], "condition": "size(details.se_hm_pool_details.pool) > 10000"}`)
	e := &Engine{Now: time.Now, Store: NewMemoryStore(), NewID: func() string { return "alert-1" }}
	e.SetRules([]*Rule{r})
	big := strings.Repeat("p", 20000)
	ev, err := events.New("SERVER_DOWN", "pool", "web", map[string]any{"se_hm_pool_details": map[string]any{"pool": big}}, "/test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ds, errs := e.Handle(ev)
	if len(errs) > 0 || len(ds) != 1 || !ds[0].Act {
		t.Fatalf("decisions %+v, errors %v", ds, errs)
	}
	got := ds[0].Alert.Events[0].EventDetails
	if _, ok := got["vigil_truncated"]; !ok || len(got) != 1 || !strings.Contains(string(got["vigil_truncated"]), `"keys":["se_hm_pool_details"]`) {
		t.Fatalf("kept details: %s", got)
	}
	if len(ev.Data.EventDetails["se_hm_pool_details"]) < 20000 {
		t.Fatal("the event itself was changed")
	}
}

// TestNoticeEventsBounded: an action request carries the alert's newest
// events that fit in MaxNoticeEvents, at least one.
func TestNoticeEventsBounded(t *testing.T) {
	a := AviAlert{}
	for i := range 20 {
		a.Events = append(a.Events, AviAlertEvent{
			EventID: "SERVER_DOWN", ReportTimestamp: int64(i),
			EventDetails: map[string]json.RawMessage{"d": json.RawMessage(`"` + strings.Repeat("x", 4000) + `"`)},
		})
	}
	boundAlert(&a)
	b, _ := json.Marshal(a.Events)
	if len(a.Events) == 0 || len(a.Events) >= 20 || len(b) > MaxNoticeEvents+len(a.Events) || a.Events[len(a.Events)-1].ReportTimestamp != 19 {
		t.Fatalf("%d events, %d bytes, newest %d", len(a.Events), len(b), a.Events[len(a.Events)-1].ReportTimestamp)
	}
	one := AviAlert{Events: []AviAlertEvent{{EventDetails: map[string]json.RawMessage{"d": json.RawMessage(`"` + strings.Repeat("x", 40000) + `"`)}}}}
	boundAlert(&one)
	if len(one.Events) != 1 {
		t.Fatal("the newest event was dropped")
	}
}

// TestActionGroupTargetsBounded: an ActionGroup takes at most MaxTargets
// webhooks.
func TestActionGroupTargetsBounded(t *testing.T) {
	hooks := strings.Repeat(`{"url": "https://h.example/x"},`, MaxTargets+1)
	_, err := DecodeActionGroup(json.RawMessage(`{"webhooks": [` + strings.TrimSuffix(hooks, ",") + `]}`))
	if err == nil || !strings.Contains(err.Error(), "spec.webhooks") {
		t.Fatalf("%d webhooks: %v", MaxTargets+1, err)
	}
}
