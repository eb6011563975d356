package controller

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/events"
)

func TestPublishEvent(t *testing.T) {
	e := newEnv(t)
	var got *events.Event
	var mu sync.Mutex
	e.bus.publishFn = func(_ context.Context, ev *events.Event) (events.PublishResult, error) {
		mu.Lock()
		defer mu.Unlock()
		got = ev
		return events.PublishResult{Seq: 42, Duplicate: ev.ID == "dup-1"}, nil
	}
	resp, body := e.do(t, "POST", "/api/v1/events", e.tokens[RoleScript],
		`{"event_id":"SERVER_DOWN","obj_type":"pool","obj_name":"web","event_details":{"se_hm_pool_details":{"pool":"web"}}}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("publish: %d %s", resp.StatusCode, body)
	}
	var ans map[string]any
	if err := json.Unmarshal(body, &ans); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if ans["id"] != got.ID || ans["seq"] != float64(42) || ans["duplicate"] != false {
		t.Errorf("answer %s for event id %s", body, got.ID)
	}
	if got.Source != "/vigil/api/t-script" || got.Data.EventID != "SERVER_DOWN" || !got.Time.Equal(e.clock.Now()) {
		t.Errorf("published %+v", got)
	}
	mu.Unlock()

	resp, body = e.do(t, "POST", "/api/v1/events", e.tokens[RoleOperator],
		`{"specversion":"1.0","id":"dup-1","source":"/x","type":"MY_EVENT","data":{"event_id":"MY_EVENT"}}`)
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(body), `"duplicate":true`) || !strings.Contains(string(body), `"id":"dup-1"`) {
		t.Errorf("duplicate publish: %d %s", resp.StatusCode, body)
	}
}

func TestListEvents(t *testing.T) {
	e := newEnv(t)
	var (
		mu   sync.Mutex
		seen events.Filter
	)
	e.bus.listFn = func(_ context.Context, f events.Filter) ([]events.Stored, uint64, error) {
		mu.Lock()
		seen = f
		mu.Unlock()
		if f.StartSeq == 43 {
			return nil, 0, nil
		}
		return []events.Stored{
			{Seq: 41, Data: []byte(`{"specversion":"1.0","id":"a","type":"SERVER_DOWN","data":{"event_id":"SERVER_DOWN"}}`)},
			{Seq: 42, Data: []byte(`{"specversion":"1.0","id":"b","type":"SERVER_UP","data":{"event_id":"SERVER_UP"}}`)},
		}, 43, nil
	}
	resp, body := e.do(t, "GET", "/api/v1/events?event_id=SERVER_DOWN&obj_type=pool&obj_name=web&since=15m&limit=2", e.tokens[RoleViewer], nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	var out struct {
		Events     []map[string]any `json:"events"`
		NextCursor string           `json:"next_cursor"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Events) != 2 || out.Events[0]["id"] != "a" || out.NextCursor != "43" {
		t.Errorf("list answered %s", body)
	}
	mu.Lock()
	want := events.Filter{EventID: "SERVER_DOWN", ObjType: "pool", ObjName: "web", Since: e.clock.Now().Add(-15 * time.Minute), Limit: 2}
	if seen != want {
		t.Errorf("filter %+v, want %+v", seen, want)
	}
	mu.Unlock()

	resp, body = e.do(t, "GET", "/api/v1/events?cursor=43&since=2025-11-25T16:00:00Z", e.tokens[RoleViewer], nil)
	if resp.StatusCode != http.StatusOK || string(bytes.TrimSpace(body)) != `{"events":[],"next_cursor":""}` {
		t.Errorf("list at the end: %d %s", resp.StatusCode, body)
	}
	mu.Lock()
	if seen.StartSeq != 43 || seen.Limit != DefaultEventLimit || !seen.Since.Equal(time.Date(2025, 11, 25, 16, 0, 0, 0, time.UTC)) {
		t.Errorf("filter %+v", seen)
	}
	mu.Unlock()
}

// sseFrame is one parsed Server-Sent Event or comment.
type sseFrame struct {
	id, event, data, comment string
}

// readFrame reads one blank-line-terminated frame.
func readFrame(t *testing.T, r *bufio.Reader) sseFrame {
	t.Helper()
	var f sseFrame
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read stream: %v (partial frame %+v)", err, f)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			return f
		}
		switch {
		case strings.HasPrefix(line, ":"):
			f.comment = strings.TrimSpace(line[1:])
		case strings.HasPrefix(line, "id: "):
			f.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			f.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			if f.data != "" {
				f.data += "\n"
			}
			f.data += line[6:]
		default:
			t.Fatalf("unexpected stream line %q", line)
		}
	}
}

// TestStream checks SSE framing, Last-Event-ID, keepalives and that the
// follow ends when the client goes away.
func TestStream(t *testing.T) {
	e := newEnv(t)
	e.api.keepAlive = 50 * time.Millisecond
	feed := make(chan events.Stored)
	filters := make(chan events.Filter, 1)
	followDone := make(chan error, 1)
	e.bus.followFn = func(ctx context.Context, f events.Filter, fn func(events.Stored) error) error {
		filters <- f
		err := func() error {
			for {
				select {
				case s := <-feed:
					if err := fn(s); err != nil {
						return err
					}
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}()
		followDone <- err
		return err
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/api/v1/events/stream?event_id=SERVER_DOWN&cursor=5", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.tokens[RoleViewer])
	req.Header.Set("Last-Event-ID", "41")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("stream answer %d %v", resp.StatusCode, resp.Header)
	}
	f := <-filters
	if f.StartSeq != 42 || f.EventID != "SERVER_DOWN" || f.Limit != 0 {
		t.Errorf("follow filter %+v, want StartSeq 42 (Last-Event-ID 41 + 1, over cursor 5)", f)
	}

	r := bufio.NewReader(resp.Body)
	ce := `{"specversion":"1.0","id":"a","type":"SERVER_DOWN","data":{"event_id":"SERVER_DOWN"}}`
	feed <- events.Stored{Seq: 42, Data: []byte(ce)}
	frame := readFrame(t, r)
	for frame.comment == "keepalive" {
		frame = readFrame(t, r)
	}
	if frame != (sseFrame{id: "42", event: "SERVER_DOWN", data: ce}) {
		t.Errorf("frame %+v", frame)
	}
	// Pretty-printed JSON still makes one data line per frame.
	feed <- events.Stored{Seq: 43, Data: []byte("{\n  \"type\": \"SERVER_UP\",\n  \"id\": \"b\"\n}")}
	frame = readFrame(t, r)
	for frame.comment == "keepalive" {
		frame = readFrame(t, r)
	}
	if frame != (sseFrame{id: "43", event: "SERVER_UP", data: `{"type":"SERVER_UP","id":"b"}`}) {
		t.Errorf("frame %+v", frame)
	}
	// Idle: keepalive comments.
	if frame := readFrame(t, r); frame.comment != "keepalive" {
		t.Errorf("idle frame %+v, want a keepalive comment", frame)
	}

	// The client goes away: the follow ends.
	cancel()
	select {
	case err := <-followDone:
		if err == nil {
			t.Error("follow ended without an error after the client left")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow still running after the client left")
	}
}

func TestWriteSSE(t *testing.T) {
	var buf bytes.Buffer
	writeSSE(&buf, events.Stored{Seq: 7, Data: []byte(`{"type":"not valid id","x":"a\nb"}`)})
	if got, want := buf.String(), "id: 7\ndata: {\"type\":\"not valid id\",\"x\":\"a\\nb\"}\n\n"; got != want {
		t.Errorf("frame %q, want %q", got, want)
	}
	buf.Reset()
	writeSSE(&buf, events.Stored{Seq: 8, Data: []byte("not json\nsecond line")})
	if got, want := buf.String(), "id: 8\ndata: not json\ndata: second line\n\n"; got != want {
		t.Errorf("frame %q, want %q", got, want)
	}
}

// FuzzEventFilter feeds arbitrary query strings to the filter parser: it
// must not panic, and what it accepts must be within bounds.
func FuzzEventFilter(f *testing.F) {
	for _, q := range []string{"", "event_id=SERVER_DOWN&limit=5", "since=15m", "since=2025-11-25T16:00:00Z", "cursor=9", "limit=0", "x=1", "since=-1h&cursor=%ff"} {
		f.Add(q)
	}
	a := &API{now: func() time.Time { return time.Unix(1764090000, 0) }}
	f.Fuzz(func(t *testing.T, q string) {
		r, err := http.NewRequest("GET", "/api/v1/events?"+q, nil)
		if err != nil {
			return
		}
		fl, err := a.eventFilter(r, true)
		if err != nil {
			return
		}
		if fl.Limit < 1 || fl.Limit > MaxEventLimit {
			t.Errorf("%q: limit %d accepted", q, fl.Limit)
		}
		if fl.EventID != "" && !eventIDRE.MatchString(fl.EventID) {
			t.Errorf("%q: event id %q accepted", q, fl.EventID)
		}
	})
}

// TestEventIDsOutliveTheDuplicateWindow: with the ids bucket, an event
// posted again with the same id after JetStream's duplicate window (here:
// a bus that never drops a repeat) is answered as a duplicate with the
// first sequence and not stored again, alone and in a batch; events
// without an id are stored each time.
func TestEventIDsOutliveTheDuplicateWindow(t *testing.T) {
	bus, err := events.StartBus(context.Background(), events.BusOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Stop)
	ids, err := events.OpenIDs(context.Background(), bus.JetStream(), 1)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *Options) { o.EventIDs = ids })
	var mu sync.Mutex
	var stored []string
	e.bus.publishFn = func(_ context.Context, ev *events.Event) (events.PublishResult, error) {
		mu.Lock()
		defer mu.Unlock()
		stored = append(stored, ev.ID)
		return events.PublishResult{Seq: uint64(len(stored))}, nil
	}
	post := func(body string, hdr ...string) map[string]any {
		t.Helper()
		resp, out := e.do(t, "POST", "/api/v1/events", e.tokens[RoleScript], body, hdr...)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("publish: %d %s", resp.StatusCode, out)
		}
		var ans map[string]any
		if err := json.Unmarshal(out, &ans); err != nil {
			t.Fatal(err)
		}
		return ans
	}
	withID := `{"id": "req-1-complete", "event_id": "SERVER_AUTOSCALE_OUT_COMPLETE", "obj_type": "pool", "obj_name": "web"}`
	if ans := post(withID); ans["seq"] != 1.0 || ans["duplicate"] != false {
		t.Fatalf("first: %v", ans)
	}
	if ans := post(withID); ans["seq"] != 1.0 || ans["duplicate"] != true || ans["id"] != "req-1-complete" {
		t.Fatalf("again: %v", ans)
	}
	noID := `{"event_id": "CUSTOM", "obj_type": "pool", "obj_name": "web"}`
	post(noID)
	post(noID)
	batch := `[{"id": "req-1-complete", "event_id": "SERVER_AUTOSCALE_OUT_COMPLETE", "obj_type": "pool", "obj_name": "web"},
	           {"id": "other", "event_id": "CUSTOM", "obj_type": "pool", "obj_name": "web"}]`
	resp, out := e.do(t, "POST", "/api/v1/events", e.tokens[RoleScript], batch, "Content-Type", "application/cloudevents-batch+json")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("batch: %d %s", resp.StatusCode, out)
	}
	var res struct {
		Results []publishAnswer `json:"results"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 2 || res.Results[0] != (publishAnswer{ID: "req-1-complete", Seq: 1, Duplicate: true}) ||
		res.Results[1].ID != "other" || res.Results[1].Duplicate || res.Results[1].Seq != 4 {
		t.Fatalf("batch answers %+v", res.Results)
	}
	if ans := post(`{"id": "other", "event_id": "CUSTOM", "obj_type": "pool", "obj_name": "web"}`); ans["seq"] != 4.0 || ans["duplicate"] != true {
		t.Fatalf("batch id again: %v", ans)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(stored) != 4 || stored[0] != "req-1-complete" || stored[3] != "other" {
		t.Fatalf("stored %v", stored)
	}
}
