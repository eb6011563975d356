package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRunScript(t *testing.T) {
	var (
		mu     sync.Mutex
		bodies []string
		paths  []string
	)
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(body))
		paths = append(paths, r.Method+" "+r.URL.EscapedPath()+"?"+r.URL.RawQuery)
		mu.Unlock()
		if r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("Content-Type %q", r.Header.Get("Content-Type"))
		}
		name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/api/v1/controlscripts/"), "/run")
		if name == "busy" {
			writeAPIError(w, 429, "queue_full", "the run queue is full; try again later", "", "")
			return
		}
		var in struct {
			Alert json.RawMessage `json:"alert"`
			Wait  bool            `json:"wait"`
		}
		_ = json.Unmarshal(body, &in)
		ex := map[string]any{
			"id": "exec-1", "script": name, "trigger": "manual", "attempt": 1,
			"status": "queued", "queued": "2026-01-02T03:04:05Z", "stdout": "", "stderr": "",
		}
		status := 202
		if in.Wait {
			status = 200
			ex["status"], ex["exit_code"], ex["stdout"] = "failed", 3, "out\n"
			ex["started"], ex["finished"] = "2026-01-02T03:04:06Z", "2026-01-02T03:04:08.5Z"
		}
		if in.Alert != nil {
			ex["alert"] = in.Alert
		}
		writeJSON(w, status, ex)
	})
	ctx := context.Background()
	ex, err := c.RunScript(ctx, "backup", nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if ex.ID != "exec-1" || ex.Status != StatusQueued || ex.Final() || ex.Duration(time.Now()) != 0 {
		t.Errorf("queued execution %+v", ex)
	}
	ex, err = c.RunScript(ctx, "backup", json.RawMessage(`{"event_id":"SERVER_DOWN"}`), true)
	if err != nil {
		t.Fatal(err)
	}
	if !ex.Final() || ex.Status != StatusFailed || ex.ExitCode == nil || *ex.ExitCode != 3 || ex.Stdout != "out\n" ||
		string(ex.Alert) != `{"event_id":"SERVER_DOWN"}` || ex.Duration(time.Now()) != 2500*time.Millisecond {
		t.Errorf("final execution %+v", ex)
	}
	_, err = c.RunScript(ctx, "busy", nil, false)
	if !IsCode(err, "queue_full") {
		t.Errorf("error %v, want queue_full", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{`{}`, `{"alert":{"event_id":"SERVER_DOWN"},"wait":true}`, `{}`}; fmt.Sprint(bodies) != fmt.Sprint(want) {
		t.Errorf("bodies %q, want %q", bodies, want)
	}
	if paths[0] != "POST /api/v1/controlscripts/backup/run?" {
		t.Errorf("path %q", paths[0])
	}
}

func TestExecutions(t *testing.T) {
	var (
		mu    sync.Mutex
		calls []string
	)
	exec1 := map[string]any{
		"id": "exec-1", "script": "backup", "trigger": "manual", "attempt": 1, "status": "running",
		"queued": "2026-01-02T03:04:05Z", "stdout": "so far", "stderr": "", "enforcement": map[string]string{"memory": "cgroup2"},
		"cpu_time_ms": 12, "peak_memory": 1048576,
	}
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, r.Method+" "+r.URL.EscapedPath()+"?"+r.URL.RawQuery)
		mu.Unlock()
		switch {
		case r.Method == "GET" && r.URL.Path == "/api/v1/executions":
			writeJSON(w, 200, map[string]any{"items": []any{exec1}})
		case r.Method == "GET" && r.URL.Path == "/api/v1/executions/exec-1":
			writeJSON(w, 200, exec1)
		case r.Method == "GET" && r.URL.Path == "/api/v1/executions/exec-1/logs":
			writeJSON(w, 200, map[string]any{"stdout": "so far", "stderr": "", "stdout_truncated": true, "stderr_truncated": false, "status": "running"})
		case r.Method == "POST" && r.URL.Path == "/api/v1/executions/exec-1/cancel":
			writeJSON(w, 200, map[string]any{"id": "exec-1", "status": "cancelled", "reason": "cancelled by admin"})
		case r.Method == "POST" && r.URL.Path == "/api/v1/executions/exec-2/cancel":
			writeAPIError(w, 409, "conflict", "Execution/exec-2 already ended (succeeded)", "Execution/exec-2", "")
		default:
			writeAPIError(w, 404, "not_found", "Execution/x: not found", "Execution/x", "")
		}
	})
	ctx := context.Background()
	items, err := c.ListExecutions(ctx, "backup", "running", 5)
	if err != nil || len(items) != 1 || items[0].ID != "exec-1" || items[0].Enforcement["memory"] != "cgroup2" {
		t.Fatalf("list: %+v, %v", items, err)
	}
	if _, err := c.ListExecutions(ctx, "", "", 0); err != nil {
		t.Fatal(err)
	}
	ex, err := c.GetExecution(ctx, "exec-1")
	if err != nil || ex.Status != StatusRunning || ex.PeakMemory != 1<<20 || ex.CPUTimeMS != 12 {
		t.Fatalf("get: %+v, %v", ex, err)
	}
	logs, err := c.ExecutionLogs(ctx, "exec-1")
	if err != nil || *logs != (ExecutionLogs{Stdout: "so far", StdoutTruncated: true, Status: "running"}) {
		t.Fatalf("logs: %+v, %v", logs, err)
	}
	ex, err = c.CancelExecution(ctx, "exec-1")
	if err != nil || ex.Status != StatusCancelled || !ex.Final() {
		t.Fatalf("cancel: %+v, %v", ex, err)
	}
	if _, err := c.CancelExecution(ctx, "exec-2"); !IsCode(err, "conflict") {
		t.Errorf("cancel of an ended execution: %v", err)
	}
	if _, err := c.GetExecution(ctx, "nope/../x"); !IsCode(err, "not_found") {
		t.Errorf("get unknown: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{
		"GET /api/v1/executions?limit=5&script=backup&status=running",
		"GET /api/v1/executions?",
		"GET /api/v1/executions/exec-1?",
		"GET /api/v1/executions/exec-1/logs?",
		"POST /api/v1/executions/exec-1/cancel?",
		"POST /api/v1/executions/exec-2/cancel?",
		"GET /api/v1/executions/nope%2F..%2Fx?",
	}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("calls:\n%q\nwant\n%q", calls, want)
	}
}

func TestFollowExecutionLogs(t *testing.T) {
	stream := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/api/v1/executions/exec-1/logs" || r.URL.Query().Get("follow") != "true" {
				writeAPIError(w, 404, "not_found", "Execution/x: not found", "Execution/x", "")
				return
			}
			if r.Header.Get("Accept") != "text/event-stream" {
				t.Errorf("Accept %q", r.Header.Get("Accept"))
			}
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
			_, _ = io.WriteString(w, body)
		}
	}
	type piece struct{ stream, data string }
	collect := func(c *Client) ([]piece, string, error) {
		var got []piece
		status, err := c.FollowExecutionLogs(context.Background(), "exec-1", func(s string, d []byte) error {
			got = append(got, piece{s, string(d)})
			return nil
		})
		return got, status, err
	}

	c := newTestClient(t, stream(": keepalive\n\n"+
		"event: stdout\ndata: line1\ndata: li\n\n"+
		"event: stdout\r\ndata: ne2\r\n\r\n"+
		"event: stderr\ndata: oops\ndata: \n\n"+
		"event: progress\ndata: 50%\n\n"+
		"data: no event name\n\n"+
		"event: end\ndata: failed\n\n"+
		"event: stdout\ndata: after the end\n\n"))
	got, status, err := collect(c)
	if err != nil || status != "failed" {
		t.Fatalf("follow: %q, %v", status, err)
	}
	want := []piece{{"stdout", "line1\nli"}, {"stdout", "ne2"}, {"stderr", "oops\n"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("pieces %q, want %q", got, want)
	}

	// The stream ends before the end event.
	c = newTestClient(t, stream("event: stdout\ndata: x\n\n"))
	if _, _, err := collect(c); !errors.Is(err, ErrStreamEnded) {
		t.Errorf("early end: %v", err)
	}
	// fn's error is returned as it is.
	boom := errors.New("boom")
	if _, err := c.FollowExecutionLogs(context.Background(), "exec-1", func(string, []byte) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("callback error: %v", err)
	}
	// An API error.
	if _, err := c.FollowExecutionLogs(context.Background(), "exec-9", func(string, []byte) error { return nil }); !IsCode(err, "not_found") {
		t.Errorf("unknown execution: %v", err)
	}
	// Not an event stream.
	c = newTestClient(t, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, map[string]any{"stdout": ""})
	})
	if _, _, err := collect(c); err == nil || !strings.Contains(err.Error(), "not an event stream") {
		t.Errorf("JSON answer: %v", err)
	}

	// ctx ends a stream that never ends.
	c = newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		_, _ = io.WriteString(w, "event: stdout\ndata: x\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	ctx, cancel := context.WithCancel(context.Background())
	_, err = c.FollowExecutionLogs(ctx, "exec-1", func(string, []byte) error { cancel(); return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("canceled follow: %v", err)
	}
}
