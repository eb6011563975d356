package config

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/events"
)

func TestEmitterConfigEvents(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	bus, err := events.StartBus(ctx, events.BusOptions{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Stop()
	c, _ := NewAESCipher(make([]byte, 32))
	st, err := OpenStore(ctx, bus.Conn(), bus.JetStream(), StoreOptions{Registry: testRegistry(), Cipher: c})
	if err != nil {
		t.Fatal(err)
	}
	em := NewEmitter(st, bus, nil)
	if err := em.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(ctx, []*Object{widget("a", 1), secretObj("s", map[string]string{"pw": plain})}, ApplyOptions{User: "alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(ctx, []*Object{widget("a", 2)}, ApplyOptions{User: "bob"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Delete(ctx, []Ref{{Kind: "Widget", Name: "a"}}, DeleteOptions{User: "carol"}); err != nil {
		t.Fatal(err)
	}
	got := waitConfigEvents(t, bus, 4)
	want := []struct{ id, objType, user, key string }{
		{"CONFIG_CREATE", "widget", "alice", "config_create_details"},
		{"CONFIG_CREATE", "secret", "alice", "config_create_details"},
		{"CONFIG_UPDATE", "widget", "bob", "config_update_details"},
		{"CONFIG_DELETE", "widget", "carol", "config_delete_details"},
	}
	for i, w := range want {
		e := got[i]
		if e.Data.EventID != w.id || e.Data.ObjType != w.objType || e.Data.Module != "CONFIG" {
			t.Fatalf("event %d: %+v", i, e.Data)
		}
		raw, ok := e.Data.EventDetails[w.key]
		if !ok {
			t.Fatalf("event %d: no %s in %v", i, w.key, e.Data.EventDetails)
		}
		var d map[string]any
		_ = json.Unmarshal(raw, &d)
		if d["user"] != w.user || d["resource_type"] != strings.ToUpper(w.objType[:1])+w.objType[1:] {
			t.Fatalf("event %d details: %v", i, d)
		}
		if strings.Contains(string(raw), plain) {
			t.Fatalf("secret in config event: %s", raw)
		}
	}
	var upd map[string]string
	_ = json.Unmarshal(got[2].Data.EventDetails["config_update_details"], &upd)
	if !strings.Contains(upd["old_resource_data"], `"size":1`) || !strings.Contains(upd["new_resource_data"], `"size":2`) {
		t.Fatalf("update details: %v", upd)
	}
	if got[0].Data.ObjUUID == "" || !strings.HasPrefix(got[0].Data.ObjUUID, "widget-") {
		t.Fatalf("obj_uuid %q", got[0].Data.ObjUUID)
	}

	// A restarted emitter re-reads nothing already acknowledged, and a
	// change redelivered after a crash is deduplicated by its event id.
	em.Stop()
	em2 := NewEmitter(st, bus, nil)
	if err := em2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer em2.Stop()
	if _, err := st.Apply(ctx, []*Object{widget("b", 1)}, ApplyOptions{User: "dave"}); err != nil {
		t.Fatal(err)
	}
	got = waitConfigEvents(t, bus, 5)
	if got[4].Data.ObjName != "b" {
		t.Fatalf("after restart: %+v", got[4].Data)
	}
}

func waitConfigEvents(t *testing.T, bus *events.Bus, n int) []*events.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		stored, _, err := bus.List(context.Background(), events.Filter{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var out []*events.Event
		for _, s := range stored {
			var e events.Event
			if err := json.Unmarshal(s.Data, &e); err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(e.Data.EventID, "CONFIG_") {
				out = append(out, &e)
			}
		}
		if len(out) >= n {
			if len(out) > n {
				t.Fatalf("%d config events, want %d", len(out), n)
			}
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d config events after 10s, want %d", len(out), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
