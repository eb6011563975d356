package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/events"
)

// TestKVStoreTwoEngines: two engines on one JetStream state bucket, fed
// the events of a burst between them at the same time, give the same
// alerts as one engine: one alert per object, every match counted once.
func TestKVStoreTwoEngines(t *testing.T) {
	t.Run("direct", func(t *testing.T) { twoEngines(t, false) })
	// Each engine with its own cache, which assumes unseen keys are new
	// and holds states the other engine changes: the revisions correct it.
	t.Run("cached", func(t *testing.T) { twoEngines(t, true) })
}

func twoEngines(t *testing.T, cached bool) {
	ctx := context.Background()
	bus := testBus(t)
	store, err := OpenKVStore(ctx, bus.JetStream(), 1)
	if err != nil {
		t.Fatal(err)
	}
	r := rule(t, `{"events": ["SERVER_DOWN"], "category": "rolling_window", "threshold": 5, "window": "1h", "throttle": "1h"}`)
	var ids sync.Map
	newID := func() string {
		id := fmt.Sprintf("alert-%d", time.Now().UnixNano())
		ids.Store(id, true)
		return id
	}
	engines := make([]*Engine, 2)
	for i := range engines {
		engines[i] = &Engine{Now: time.Now, Store: store, NewID: newID}
		if cached {
			engines[i].Store = NewCachedStore(store, 2) // smaller than the groups: evictions too
		}
		engines[i].SetRules([]*Rule{r})
	}
	const perObject = 40
	objects := []string{"web", "api", "db"}
	var wg sync.WaitGroup
	var mu sync.Mutex
	acts, throttled, handled := map[string]int{}, map[string]int{}, []int{0, 0}
	base := time.Now()
	for i, e := range engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range perObject * len(objects) {
				if n%2 != i {
					continue // the shared consumer gives each engine a share
				}
				obj := objects[n%len(objects)]
				ev, err := events.New("SERVER_DOWN", "pool", obj, nil, "/test", base.Add(time.Duration(n)*time.Millisecond))
				if err != nil {
					t.Error(err)
					return
				}
				ds, errs := e.Handle(ev)
				if len(errs) > 0 {
					t.Error(errs)
					return
				}
				mu.Lock()
				handled[i]++
				for _, d := range ds {
					if d.Act {
						acts[obj]++
					}
					if d.Throttled {
						throttled[obj]++
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, obj := range objects {
		if acts[obj] != 1 || throttled[obj] != perObject-5 {
			t.Errorf("%s: %d actions, %d throttled; want 1 and %d", obj, acts[obj], throttled[obj], perObject-5)
		}
		st, rev, err := store.Load("r", `["pool","`+obj+`"]`)
		if err != nil || st == nil || rev == 0 || st.Alert == nil {
			t.Fatalf("%s: state %+v rev %d %v", obj, st, rev, err)
		}
		// The alert holds the 5 events of its threshold and the throttled ones.
		if st.Alert.ThrottleCount != perObject-5 || len(st.Alert.Events) != min(perObject, MaxAlertEvents) {
			t.Errorf("%s: throttle_count %d, %d events", obj, st.Alert.ThrottleCount, len(st.Alert.Events))
		}
	}
	if handled[0] == 0 || handled[1] == 0 {
		t.Errorf("shares %v", handled)
	}
	n := 0
	if err := store.Range("", func(string, string, *GroupState) bool { n++; return true }); err != nil || n != len(objects) {
		t.Errorf("Range: %d states, %v", n, err)
	}
}

// TestKVStoreLargestState: a state at every bound at once — a full window
// of MaxThreshold hits, the events a new alert carries, the remembered
// event ids, an alert with its events and a full outbox — fits in one
// write to the bucket.
func TestKVStoreLargestState(t *testing.T) {
	ctx := context.Background()
	bus := testBus(t)
	store, err := OpenKVStore(ctx, bus.JetStream(), 1)
	if err != nil {
		t.Fatal(err)
	}
	// Details just under what an alert keeps of one event.
	details := map[string]any{"se_hm_pool_details": map[string]any{"pool": strings.Repeat("p", MaxKeptDetails-64)}}
	ev, err := events.New("SERVER_DOWN", "pool", strings.Repeat("n", 100), details, "/test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	st := &GroupState{Newest: now, Alert: &Alert{ID: "alert-1", Config: "c", State: StateOn}}
	for i := range MaxThreshold {
		st.Hits = append(st.Hits, now.Add(-time.Duration(i)*time.Millisecond-time.Nanosecond))
	}
	for range MaxAlertEvents {
		st.Recent = append(st.Recent, ev.Data)
		st.Alert.Events = append(st.Alert.Events, ev.Data)
	}
	for range seenIDs {
		st.Seen = append(st.Seen, ev.ID)
	}
	for size := 0; size+8<<10 <= MaxOutboxBytes; {
		data := []byte(`{"pad":"` + strings.Repeat("x", 8<<10) + `"}`)
		st.Outbox = append(st.Outbox, Outbound{Key: fmt.Sprintf("act-%d", len(st.Outbox)), Data: data, At: now})
		size += len(data)
	}
	b, _ := json.Marshal(st)
	if err := store.Save("c", `["pool","x"]`, st, 0); err != nil {
		t.Fatalf("a %d-byte state at the bounds: %v", len(b), err)
	}
	t.Logf("state at the bounds: %d bytes", len(b))
}

// testBus starts an embedded NATS server with vigil's streams for one test.
func testBus(tb testing.TB) *events.Bus {
	tb.Helper()
	bus, err := events.StartBus(context.Background(), events.BusOptions{StoreDir: filepath.Join(tb.TempDir(), "js")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(bus.Stop)
	return bus
}
