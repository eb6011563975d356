package health

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilhq/vigil/events"
)

// TestBusPublish: SERVER_DOWN goes through the embedded bus as a valid
// event on vigil.events.SERVER_DOWN.pool.web, and is stored.
func TestBusPublish(t *testing.T) {
	ctx := context.Background()
	bus, err := events.StartBus(ctx, events.BusOptions{StoreDir: filepath.Join(t.TempDir(), "js")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Stop)
	sub, err := bus.Conn().SubscribeSync(events.EventsPrefix + ".SERVER_DOWN.>")
	if err != nil {
		t.Fatal(err)
	}

	c := newChecker(t, Options{Publisher: bus})
	addr := freeAddr(t)
	ip, port := hostPort(t, addr)
	c.Set(map[string]PoolConfig{"web": poolConfig(t, "web", tcpMonitor(30*time.Millisecond, 2, 2), []string{"shop"}, addr)})

	msg, err := sub.NextMsg(waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Subject != events.SubjectFor("SERVER_DOWN", "pool", "web") {
		t.Fatalf("subject %s", msg.Subject)
	}
	ev, err := events.Decode(msg.Data, "/test", time.Now())
	if err != nil {
		t.Fatalf("event does not validate: %v\n%s", err, msg.Data)
	}
	if ev.Source != DefaultSource || ev.Data.Module != "SE_HM" {
		t.Fatalf("event = %+v", ev)
	}
	s := serverOf(t, ev)
	if s["failure_code"] != FailureConnectionRefused || s["port"] != float64(port) || s["ip"].(map[string]any)["addr"] != ip {
		t.Fatalf("server = %v", s)
	}

	var stored []events.Stored
	waitFor(t, "the stored POOL_DOWN and VS_DOWN", func() bool {
		stored, _, err = bus.List(ctx, events.Filter{})
		return err == nil && len(stored) == 3
	})
	var ids []string
	for _, st := range stored {
		ev, err := events.Decode(st.Data, "/test", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.Data.EventID)
	}
	if ids[0] != EventServerDown || ids[1] != EventPoolDown || ids[2] != EventVSDown {
		t.Fatalf("stored %v", ids)
	}
}
