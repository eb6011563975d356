package events

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestValidatorRemembersIDs: with a duplicate window of 200 ms, an event
// ingested over NATS again after the window is not stored again when the
// validator has the ids bucket; an event published twice past the window
// without it is (the window alone is short).
func TestValidatorRemembersIDs(t *testing.T) {
	ctx := context.Background()
	bus, err := StartBus(ctx, BusOptions{StoreDir: t.TempDir(), DuplicateWindow: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Stop)
	ids, err := OpenIDs(ctx, bus.JetStream(), 1)
	if err != nil {
		t.Fatal(err)
	}
	v := NewValidator(bus, nil, nil)
	v.IDs = ids
	var handled atomic.Int32
	v.OnResult = func(string, error) { handled.Add(1) }
	if err := v.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Stop)
	count := func(id string) int {
		t.Helper()
		got, _, err := bus.List(ctx, Filter{EventID: id})
		if err != nil {
			t.Fatal(err)
		}
		return len(got)
	}
	wait := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	ingest := func() {
		t.Helper()
		if err := bus.Conn().Publish(IngestPrefix+".test", []byte(`{"id": "once-1", "event_id": "INGESTED_ONCE", "obj_type": "pool", "obj_name": "web"}`)); err != nil {
			t.Fatal(err)
		}
	}
	ingest()
	wait("the first copy", func() bool { return handled.Load() == 1 })
	time.Sleep(400 * time.Millisecond) // past the window
	ingest()
	wait("the second copy", func() bool { return handled.Load() == 2 })
	if n := count("INGESTED_ONCE"); n != 1 {
		t.Fatalf("%d copies stored, want 1", n)
	}
	seq, ok, err := ids.Lookup(ctx, "once-1")
	if err != nil || !ok || seq == 0 {
		t.Fatalf("lookup: %d %v %v", seq, ok, err)
	}

	// The window alone: past it, the same id is stored again.
	probe := func() PublishResult {
		t.Helper()
		ev, err := New("PROBE", "pool", "web", nil, "test", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		ev.ID = "probe-1"
		res, err := bus.Publish(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	probe()
	time.Sleep(400 * time.Millisecond)
	if res := probe(); res.Duplicate {
		t.Fatal("the duplicate window is not short: the test shows nothing")
	}
}
