package schedule

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func compile(t *testing.T, spec string) *Schedule {
	t.Helper()
	sc, err := Compile(json.RawMessage(spec))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestNext(t *testing.T) {
	for _, c := range []struct{ spec, from, want string }{
		// @every: the multiples of the delay since the epoch.
		{`"cron": "@every 1s"`, "2025-03-01T10:00:00.4Z", "2025-03-01T10:00:01Z"},
		{`"cron": "@every 1s"`, "2025-03-01T10:00:01Z", "2025-03-01T10:00:02Z"},
		{`"cron": "@every 90s"`, "1970-01-01T00:01:40Z", "1970-01-01T00:03:00Z"},
		{`"cron": "@every 1h"`, "2025-03-01T10:20:00Z", "2025-03-01T11:00:00Z"},
		// Five fields and six (seconds first) say the same.
		{`"cron": "30 2 * * *"`, "2025-01-10T12:00:00Z", "2025-01-11T02:30:00Z"},
		{`"cron": "0 30 2 * * *"`, "2025-01-10T12:00:00Z", "2025-01-11T02:30:00Z"},
		{`"cron": "*/20 * * * * *"`, "2025-01-10T12:00:05Z", "2025-01-10T12:00:20Z"},
		// Zones, with daylight saving: 02:30 in Paris is 01:30 UTC in
		// winter and 00:30 UTC in summer.
		{`"cron": "30 2 * * *", "timezone": "Europe/Paris"`, "2025-01-10T12:00:00Z", "2025-01-11T01:30:00Z"},
		{`"cron": "30 2 * * *", "timezone": "Europe/Paris"`, "2025-07-10T12:00:00Z", "2025-07-11T00:30:00Z"},
		{`"cron": "@daily", "timezone": "Asia/Tokyo"`, "2025-07-10T12:00:00Z", "2025-07-10T15:00:00Z"},
	} {
		sc := compile(t, `{`+c.spec+`, "controlscript": "x"}`)
		if got := sc.Next(utc(c.from)); !got.Equal(utc(c.want)) {
			t.Errorf("%s from %s: got %s, want %s", c.spec, c.from, got, c.want)
		}
	}
}

func TestLatest(t *testing.T) {
	q := compile(t, `{"cron": "*/15 * * * *", "controlscript": "x"}`)
	if got := q.Latest(time.Time{}, utc("2025-01-10T10:07:00Z")); !got.Equal(utc("2025-01-10T10:00:00Z")) {
		t.Errorf("got %s", got)
	}
	if got := q.Latest(time.Time{}, utc("2025-01-10T10:15:00Z")); !got.Equal(utc("2025-01-10T10:15:00Z")) {
		t.Errorf("a slot at t itself: got %s", got)
	}
	if got := q.Latest(utc("2025-01-10T10:00:00Z"), utc("2025-01-10T10:07:00Z")); !got.IsZero() {
		t.Errorf("after bounds it: got %s", got)
	}
	// Sparse: the windows widen until one holds a slot.
	m := compile(t, `{"cron": "0 0 1 1 *", "controlscript": "x"}`)
	if got := m.Latest(time.Time{}, utc("2025-06-10T10:07:00Z")); !got.Equal(utc("2025-01-01T00:00:00Z")) {
		t.Errorf("yearly: got %s", got)
	}
	e := compile(t, `{"cron": "@every 10s", "controlscript": "x"}`)
	if got := e.Latest(time.Time{}, utc("2025-01-10T10:00:09.9Z")); !got.Equal(utc("2025-01-10T10:00:00Z")) {
		t.Errorf("every: got %s", got)
	}
	if got := e.Latest(time.Time{}, utc("2025-01-10T10:00:10Z")); !got.Equal(utc("2025-01-10T10:00:10Z")) {
		t.Errorf("every, on the grid: got %s", got)
	}
}

// TestMissed: the last run was 10 slots before now.
func TestMissed(t *testing.T) {
	last := utc("2025-01-10T10:00:00Z")
	now := last.Add(10*time.Minute + 30*time.Second)
	slot := func(i int) time.Time { return last.Add(time.Duration(i) * time.Minute) }
	for _, c := range []struct {
		policy string
		want   []time.Time
	}{
		{`"missed": "skip"`, nil},
		{``, nil},
		{`"missed": "once"`, []time.Time{slot(10)}},
		{`"missed": "catch_up", "catch_up_limit": 3`, []time.Time{slot(1), slot(2), slot(3)}},
		{`"missed": "catch_up", "catch_up_limit": 50`, []time.Time{slot(1), slot(2), slot(3), slot(4), slot(5), slot(6), slot(7), slot(8), slot(9), slot(10)}},
	} {
		for _, cron := range []string{"* * * * *", "@every 1m"} {
			spec := `{"cron": "` + cron + `", "controlscript": "x"`
			if c.policy != "" {
				spec += ", " + c.policy
			}
			sc := compile(t, spec+"}")
			got := sc.Missed(last, sc.Next(now))
			if len(got) != len(c.want) {
				t.Errorf("%s: got %v, want %v", spec, got, c.want)
				continue
			}
			for i := range got {
				if !got[i].Equal(c.want[i]) {
					t.Errorf("%s: got %v, want %v", spec, got, c.want)
					break
				}
			}
		}
	}
	sc := compile(t, `{"cron": "* * * * *", "controlscript": "x", "missed": "once"}`)
	if got := sc.Missed(now, now); got != nil {
		t.Errorf("empty range: got %v", got)
	}
	// The live loop's range is open at the slot it fires.
	if got := sc.Missed(slot(8), slot(10)); len(got) != 1 || !got[0].Equal(slot(9)) {
		t.Errorf("open end: got %v", got)
	}
}

func TestSlotIDs(t *testing.T) {
	slot := utc("2025-01-10T10:00:00Z")
	a, b := ExecutionID("nightly", slot), ExecutionID("nightly", slot)
	if a != b {
		t.Fatalf("not deterministic: %s %s", a, b)
	}
	u, err := uuid.Parse(strings.TrimPrefix(a, "exec-"))
	if err != nil || !strings.HasPrefix(a, "exec-") || u.Version() != 7 {
		t.Fatalf("%s: not exec- and a UUIDv7 (%v)", a, err)
	}
	if sec, _ := u.Time().UnixTime(); sec != slot.Unix() {
		t.Errorf("the UUID's time is not the slot's: %d", sec)
	}
	seen := map[string]bool{a: true}
	for _, id := range []string{
		ExecutionID("nightly", slot.Add(time.Second)), ExecutionID("nightly2", slot),
		EventID("nightly", slot), resultEventID("nightly", slot),
	} {
		if seen[id] || seen["exec-"+id] {
			t.Errorf("id %s repeats", id)
		}
		seen[id] = true
	}
	if k := slotKey("a.b", slot); k != "a.b.1736503200000000000" {
		t.Errorf("key %s", k)
	}
	if claimTTL(time.Second) != time.Hour || claimTTL(24*time.Hour) != 48*time.Hour {
		t.Error("claim TTL")
	}
}
