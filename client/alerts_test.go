package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
)

func TestAlertsAndDeadLetters(t *testing.T) {
	var (
		mu     sync.Mutex
		calls  []string
		bodies []string
	)
	alert := map[string]any{
		"id": "alert-1", "config": "web-down", "key": "pool/web", "state": "ON", "level": "high",
		"obj_type": "pool", "obj_name": "web", "raised": "2026-01-02T03:04:05Z", "acted": "2026-01-02T03:04:05Z",
		"throttle_count": 2, "summary": "pool web down",
		"events":  []any{map[string]any{"event_id": "SERVER_DOWN", "obj_type": "pool", "obj_name": "web", "report_timestamp": 1767323045}},
		"actions": []any{map[string]any{"key": "act-1", "kind": "webhook", "target": "webhooks[0]", "status": "dead", "tries": 5, "at": "2026-01-02T03:04:06Z"}},
	}
	dead := func(seq int) map[string]any {
		return map[string]any{
			"seq": seq, "error": "HTTP 500", "status": 500, "tries": 5, "at": "2026-01-02T03:04:06Z",
			"request": map[string]any{"key": fmt.Sprintf("act-%d", seq), "kind": "syslog", "index": 1, "config": "web-down", "notice": map[string]any{"id": "alert-1"}},
		}
	}
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls = append(calls, r.Method+" "+r.URL.EscapedPath()+"?"+r.URL.RawQuery)
		if len(body) > 0 {
			bodies = append(bodies, string(body))
		}
		mu.Unlock()
		switch {
		case r.Method == "GET" && r.URL.Path == "/api/v1/alerts":
			writeJSON(w, 200, map[string]any{"items": []any{alert}})
		case r.Method == "GET" && r.URL.Path == "/api/v1/alerts/alert-1":
			writeJSON(w, 200, alert)
		case r.Method == "POST" && r.URL.Path == "/api/v1/alerts/alert-1/dismiss":
			dismissed := map[string]any{}
			for k, v := range alert {
				dismissed[k] = v
			}
			dismissed["state"] = "DISMISSED"
			writeJSON(w, 200, dismissed)
		case r.Method == "POST" && r.URL.Path == "/api/v1/alerts/test":
			if r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("test: Content-Type %q", r.Header.Get("Content-Type"))
			}
			writeJSON(w, 200, map[string]any{"results": []any{
				map[string]any{
					"config": "web-down", "matched": true, "key": "pool/web", "outcome": "raise",
					"actions": []any{map[string]any{"target": "webhooks[0]", "status": "queued"}},
				},
				map[string]any{"config": "db-down", "matched": false, "reason": "event_id is not POOL_DOWN"},
			}})
		case r.Method == "GET" && r.URL.Path == "/api/v1/deadletters" && r.URL.Query().Get("cursor") == "":
			writeJSON(w, 200, map[string]any{"items": []any{dead(3)}, "next_cursor": "4"})
		case r.Method == "GET" && r.URL.Path == "/api/v1/deadletters":
			writeJSON(w, 200, map[string]any{"items": []any{dead(4)}})
		case r.Method == "POST" && r.URL.Path == "/api/v1/deadletters/3/replay":
			writeJSON(w, 200, dead(3))
		case r.URL.Path == "/api/v1/deadletters/9/replay":
			writeAPIError(w, 404, "not_found", "DeadLetter/9: not found (replayed already, or past its retention)", "DeadLetter/9", "")
		default:
			writeAPIError(w, 404, "not_found", "Alert/x: not found (it may have expired)", "Alert/x", "")
		}
	})
	ctx := context.Background()

	items, err := c.ListAlerts(ctx, AlertFilter{Config: "web-down", State: "on", Limit: 5})
	if err != nil || len(items) != 1 || items[0].ID != "alert-1" || items[0].ThrottleCount != 2 ||
		len(items[0].Events) != 1 || items[0].Events[0].ReportTimestamp != 1767323045 || items[0].Actions[0].Target != "webhooks[0]" {
		t.Fatalf("list: %+v, %v", items, err)
	}
	if _, err := c.ListAlerts(ctx, AlertFilter{}); err != nil {
		t.Fatal(err)
	}
	a, err := c.GetAlert(ctx, "alert-1")
	if err != nil || a.State != AlertOn || a.Raised.IsZero() {
		t.Fatalf("get: %+v, %v", a, err)
	}
	if _, err := c.GetAlert(ctx, "a/b"); !IsCode(err, "not_found") {
		t.Errorf("get unknown: %v", err)
	}
	a, err = c.DismissAlert(ctx, "alert-1")
	if err != nil || a.State != AlertDismissed {
		t.Fatalf("dismiss: %+v, %v", a, err)
	}
	res, err := c.TestAlerts(ctx, []byte(`{"event_id":"SERVER_DOWN","obj_type":"pool","obj_name":"web"}`))
	if err != nil || len(res) != 2 || !res[0].Matched || res[0].Outcome != "raise" || res[0].Actions[0].Target != "webhooks[0]" ||
		res[1].Matched || res[1].Reason == "" {
		t.Fatalf("test: %+v, %v", res, err)
	}
	page, err := c.ListDeadLetters(ctx, "", 1)
	if err != nil || len(page.Items) != 1 || page.NextCursor != "4" || page.Items[0].Request.Target() != "syslog[1]" ||
		page.Items[0].Request.Notice.ID != "alert-1" {
		t.Fatalf("dead letters: %+v, %v", page, err)
	}
	page, err = c.ListDeadLetters(ctx, page.NextCursor, 0)
	if err != nil || len(page.Items) != 1 || page.Items[0].Seq != 4 || page.NextCursor != "" {
		t.Fatalf("dead letters, page 2: %+v, %v", page, err)
	}
	dl, err := c.ReplayDeadLetter(ctx, 3)
	if err != nil || dl.Seq != 3 || dl.Request.Key != "act-3" {
		t.Fatalf("replay: %+v, %v", dl, err)
	}
	if _, err := c.ReplayDeadLetter(ctx, 9); !IsCode(err, "not_found") {
		t.Errorf("replay unknown: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	want := []string{
		"GET /api/v1/alerts?config=web-down&limit=5&state=on",
		"GET /api/v1/alerts?",
		"GET /api/v1/alerts/alert-1?",
		"GET /api/v1/alerts/a%2Fb?",
		"POST /api/v1/alerts/alert-1/dismiss?",
		"POST /api/v1/alerts/test?",
		"GET /api/v1/deadletters?limit=1",
		"GET /api/v1/deadletters?cursor=4",
		"POST /api/v1/deadletters/3/replay?",
		"POST /api/v1/deadletters/9/replay?",
	}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("calls:\n%q\nwant\n%q", calls, want)
	}
	// The event goes as it is: not re-encoded, not base64.
	if want := []string{`{"event_id":"SERVER_DOWN","obj_type":"pool","obj_name":"web"}`}; fmt.Sprint(bodies) != fmt.Sprint(want) {
		t.Errorf("bodies %q, want %q", bodies, want)
	}
}
