package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/runner"
)

// The runner's engine is what app gives Options.Runner.
var _ Runner = (*runner.Runner)(nil)

// decodeExecution decodes an answer that must be one execution.
func decodeExecution(t *testing.T, body []byte) *runner.Execution {
	t.Helper()
	var ex runner.Execution
	if err := json.Unmarshal(body, &ex); err != nil {
		t.Fatalf("answer is not an execution: %v: %s", err, body)
	}
	return &ex
}

func TestRunScript(t *testing.T) {
	e := newEnv(t)
	var (
		mu   sync.Mutex
		reqs []runner.RunRequest
	)
	e.runner.submitFn = func(_ context.Context, req runner.RunRequest) (*runner.Execution, error) {
		mu.Lock()
		defer mu.Unlock()
		reqs = append(reqs, req)
		ex := testExecution(fmt.Sprintf("exec-%d", len(reqs)), runner.StatusQueued)
		ex.Script, ex.TriggeredBy, ex.Alert = req.Script, req.User, req.Alert
		return ex, nil
	}
	var waits atomic.Int32
	e.runner.waitFn = func(context.Context, string) (*runner.Execution, error) {
		waits.Add(1)
		return nil, errors.New("not called without wait")
	}
	last := func() runner.RunRequest {
		mu.Lock()
		defer mu.Unlock()
		return reqs[len(reqs)-1]
	}

	resp, body := e.do(t, "POST", "/api/v1/controlscripts/backup/run", e.tokens[RoleAdmin], nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("run: %d %s", resp.StatusCode, body)
	}
	if ex := decodeExecution(t, body); ex.ID != "exec-1" || ex.Status != runner.StatusQueued || ex.Script != "backup" {
		t.Errorf("answer %s", body)
	}
	if got, want := last(), (runner.RunRequest{Script: "backup", Trigger: runner.TriggerManual, User: "t-admin"}); !reflect.DeepEqual(got, want) {
		t.Errorf("submitted %+v, want %+v", got, want)
	}

	// The script role may run scripts, with an alert.
	resp, body = e.do(t, "POST", "/api/v1/controlscripts/backup/run", e.tokens[RoleScript], `{"alert": {"event_id": "SERVER_DOWN", "n": [1, 2]}}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("run as script: %d %s", resp.StatusCode, body)
	}
	if got := last(); got.User != "t-script" || string(got.Alert) != `{"event_id":"SERVER_DOWN","n":[1,2]}` {
		t.Errorf("submitted %+v (alert %s)", got, got.Alert)
	}
	if ex := decodeExecution(t, body); string(ex.Alert) != `{"event_id":"SERVER_DOWN","n":[1,2]}` {
		t.Errorf("answer alert %s", ex.Alert)
	}

	// Operators may; a null alert is no alert; wait false does not wait.
	resp, body = e.do(t, "POST", "/api/v1/controlscripts/backup/run?wait=false", e.tokens[RoleOperator], `{"alert": null, "wait": false}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("run as operator: %d %s", resp.StatusCode, body)
	}
	if got := last(); got.User != "t-operator" || got.Alert != nil {
		t.Errorf("submitted %+v", got)
	}

	// Viewers may not.
	n := len(reqs)
	resp, body = e.do(t, "POST", "/api/v1/controlscripts/backup/run", e.tokens[RoleViewer], `{}`)
	wantErr(t, resp, body, http.StatusForbidden, CodeForbidden)
	mu.Lock()
	if len(reqs) != n {
		t.Error("a viewer's run was submitted")
	}
	mu.Unlock()
	if waits.Load() != 0 {
		t.Errorf("Wait called %d times without wait", waits.Load())
	}
}

func TestRunWait(t *testing.T) {
	e := newEnv(t)
	var waited sync.Map
	e.runner.waitFn = func(_ context.Context, id string) (*runner.Execution, error) {
		waited.Store(id, true)
		ex := testExecution(id, runner.StatusFailed)
		code := 3
		ex.ExitCode, ex.Stdout = &code, "partial\n"
		return ex, nil
	}
	for _, tc := range []struct{ path, body string }{
		{"/api/v1/controlscripts/backup/run", `{"wait": true}`},
		{"/api/v1/controlscripts/backup/run?wait=true", ""},
		{"/api/v1/controlscripts/backup/run?wait=1", `{"alert": {}}`},
	} {
		waited.Clear()
		resp, body := e.do(t, "POST", tc.path, e.tokens[RoleScript], tc.body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %d %s", tc.path, tc.body, resp.StatusCode, body)
		}
		ex := decodeExecution(t, body)
		if ex.Status != runner.StatusFailed || ex.ExitCode == nil || *ex.ExitCode != 3 || ex.Stdout != "partial\n" {
			t.Errorf("%s: answer %s", tc.path, body)
		}
		if _, ok := waited.Load("exec-1"); !ok {
			t.Errorf("%s: did not wait for exec-1", tc.path)
		}
	}

	// An execution that is final at once (rejected) needs no wait.
	e.runner.submitFn = func(context.Context, runner.RunRequest) (*runner.Execution, error) {
		ex := testExecution("exec-2", runner.StatusRejected)
		ex.Reason = "no cgroup"
		return ex, nil
	}
	waited.Clear()
	resp, body := e.do(t, "POST", "/api/v1/controlscripts/backup/run", e.tokens[RoleAdmin], `{"wait": true}`)
	if resp.StatusCode != http.StatusOK || decodeExecution(t, body).Status != runner.StatusRejected {
		t.Errorf("final at once: %d %s", resp.StatusCode, body)
	}
	if _, ok := waited.Load("exec-2"); ok {
		t.Error("waited for a final execution")
	}

	// A failing wait maps its error.
	e.runner.submitFn = nil
	e.runner.waitFn = func(_ context.Context, id string) (*runner.Execution, error) {
		return nil, fmt.Errorf("%s: %w", id, runner.ErrNotFound)
	}
	resp, body = e.do(t, "POST", "/api/v1/controlscripts/backup/run", e.tokens[RoleAdmin], `{"wait": true}`)
	if got := wantErr(t, resp, body, http.StatusNotFound, CodeNotFound); got.Object != "Execution/exec-1" {
		t.Errorf("object %q", got.Object)
	}
}

// TestRunWaitBounded checks that a wait ends with the request, and that
// Stop answers a waiting run with the execution as it stands.
func TestRunWaitBounded(t *testing.T) {
	e := newEnv(t)
	started := make(chan struct{}, 1)
	ended := make(chan error, 1)
	e.runner.waitFn = func(ctx context.Context, _ string) (*runner.Execution, error) {
		started <- struct{}{}
		<-ctx.Done()
		ended <- ctx.Err()
		return nil, ctx.Err()
	}

	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "POST", e.srv.URL+"/api/v1/controlscripts/backup/run?wait=true", nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens[RoleAdmin])
	done := make(chan error, 1)
	go func() {
		resp, err := e.srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-started
	cancel()
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("wait ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the wait outlived its request")
	}
	if err := <-done; err == nil {
		t.Error("the canceled request got an answer")
	}

	// Stop ends the wait; the answer is the execution as it stands.
	go func() {
		<-started
		e.api.Stop(context.Background())
	}()
	resp, body := e.do(t, "POST", "/api/v1/controlscripts/backup/run", e.tokens[RoleAdmin], `{"wait": true}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("run during stop: %d %s", resp.StatusCode, body)
	}
	if ex := decodeExecution(t, body); ex.ID != "exec-1" || ex.Status != runner.StatusRunning {
		t.Errorf("answer %s", body)
	}
}

func TestRunErrors(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[RoleAdmin]
	submitErr := func(err error) func(context.Context, runner.RunRequest) (*runner.Execution, error) {
		return func(context.Context, runner.RunRequest) (*runner.Execution, error) { return nil, err }
	}
	cases := []struct {
		name          string
		submit        error
		path, body    string
		status        int
		code          Code
		object, field string
	}{
		{"no such script", &config.NotFoundError{Object: "ControlScript/nope"}, "/api/v1/controlscripts/nope/run", "", 404, CodeNotFound, "ControlScript/nope", ""},
		{"no such script, plain", fmt.Errorf("get: %w", config.ErrNotFound), "/api/v1/controlscripts/gone/run", "", 404, CodeNotFound, "ControlScript/gone", ""},
		{"queue full", fmt.Errorf("backup: %w", runner.ErrQueueFull), "/api/v1/controlscripts/backup/run", "", 429, CodeQueueFull, "", ""},
		{
			"invalid script", &config.FieldError{Object: "ControlScript/backup", Field: "spec.interpreter", Message: "must be an absolute path"},
			"/api/v1/controlscripts/backup/run", "", 400, CodeInvalidObject, "ControlScript/backup", "spec.interpreter",
		},
		{"internal", errors.New("kv: disk on fire"), "/api/v1/controlscripts/backup/run", "", 500, CodeInternal, "", ""},

		{"alert is an array", nil, "/api/v1/controlscripts/backup/run", `{"alert": [1]}`, 400, CodeBadRequest, "", "alert"},
		{"alert is a string", nil, "/api/v1/controlscripts/backup/run", `{"alert": "down"}`, 400, CodeBadRequest, "", "alert"},
		{"alert is a number", nil, "/api/v1/controlscripts/backup/run", `{"alert": 1}`, 400, CodeBadRequest, "", "alert"},
		{"unknown field", nil, "/api/v1/controlscripts/backup/run", `{"alrt": {}}`, 400, CodeBadRequest, "", ""},
		{"bad JSON", nil, "/api/v1/controlscripts/backup/run", `{"alert": `, 400, CodeBadRequest, "", ""},
		{"trailing data", nil, "/api/v1/controlscripts/backup/run", `{} {}`, 400, CodeBadRequest, "", ""},
		{"body not an object", nil, "/api/v1/controlscripts/backup/run", `[]`, 400, CodeBadRequest, "", ""},
		{"wait not a boolean", nil, "/api/v1/controlscripts/backup/run", `{"wait": "yes"}`, 400, CodeBadRequest, "", "wait"},
		{"bad wait query", nil, "/api/v1/controlscripts/backup/run?wait=maybe", "", 400, CodeBadRequest, "", "wait"},
		{"unknown query", nil, "/api/v1/controlscripts/backup/run?wiat=true", "", 400, CodeBadRequest, "", "wiat"},
		{"too large", nil, "/api/v1/controlscripts/backup/run", `{"alert": {"x": "` + strings.Repeat("x", MaxRunBody) + `"}}`, 413, CodeTooLarge, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.runner.submitFn = nil
			if c.submit != nil {
				e.runner.submitFn = submitErr(c.submit)
			}
			resp, body := e.do(t, "POST", c.path, admin, c.body)
			got := wantErr(t, resp, body, c.status, c.code)
			if got.Object != c.object {
				t.Errorf("object %q, want %q", got.Object, c.object)
			}
			if c.field != "" && got.Field != c.field {
				t.Errorf("field %q, want %q", got.Field, c.field)
			}
			if c.status == 500 && strings.Contains(got.Message, "disk on fire") {
				t.Errorf("500 shows its cause: %s", body)
			}
			if ra := resp.Header.Get("Retry-After"); (c.code == CodeQueueFull) != (ra == "1") {
				t.Errorf("Retry-After %q", ra)
			}
		})
	}
}

func TestRunnerNotEnabled(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Runner = nil })
	admin := e.tokens[RoleAdmin]
	for _, r := range []struct{ method, path string }{
		{"POST", "/api/v1/controlscripts/backup/run"},
		{"GET", "/api/v1/executions"},
		{"GET", "/api/v1/executions/exec-1"},
		{"GET", "/api/v1/executions/exec-1/logs?follow=true"},
		{"POST", "/api/v1/executions/exec-1/cancel"},
	} {
		resp, body := e.do(t, r.method, r.path, admin, nil)
		if got := wantErr(t, resp, body, http.StatusServiceUnavailable, CodeUnavailable); got.Message != "the runner is not enabled" {
			t.Errorf("%s %s: message %q", r.method, r.path, got.Message)
		}
	}
	// Auth comes first.
	resp, body := e.do(t, "POST", "/api/v1/controlscripts/backup/run", e.tokens[RoleViewer], nil)
	wantErr(t, resp, body, http.StatusForbidden, CodeForbidden)
}

func TestListExecutions(t *testing.T) {
	e := newEnv(t)
	var (
		mu   sync.Mutex
		seen runner.ExecFilter
	)
	e.runner.listFn = func(_ context.Context, f runner.ExecFilter) ([]*runner.Execution, error) {
		mu.Lock()
		seen = f
		mu.Unlock()
		if f.Script == "none" {
			return nil, nil
		}
		return []*runner.Execution{testExecution("exec-2", runner.StatusRunning), testExecution("exec-1", runner.StatusSucceeded)}, nil
	}
	filter := func() runner.ExecFilter {
		mu.Lock()
		defer mu.Unlock()
		return seen
	}
	resp, body := e.do(t, "GET", "/api/v1/executions", e.tokens[RoleViewer], nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	var out struct {
		Items []*runner.Execution `json:"items"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Items) != 2 || out.Items[0].ID != "exec-2" || out.Items[1].ID != "exec-1" {
		t.Errorf("items %s", body)
	}
	if got := filter(); got != (runner.ExecFilter{Limit: DefaultExecutionLimit}) {
		t.Errorf("filter %+v", got)
	}

	resp, body = e.do(t, "GET", "/api/v1/executions?script=backup&status=failed&limit=1", e.tokens[RoleScript], nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	if got := filter(); got != (runner.ExecFilter{Script: "backup", Status: "failed", Limit: 1}) {
		t.Errorf("filter %+v", got)
	}
	if err := json.Unmarshal(body, &out); err != nil || len(out.Items) != 1 {
		t.Errorf("limit 1 answered %s", body)
	}

	resp, body = e.do(t, "GET", "/api/v1/executions?script=none", e.tokens[RoleAdmin], nil)
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `{"items":[]}` {
		t.Errorf("empty list: %d %s", resp.StatusCode, body)
	}

	for _, st := range ExecutionStatuses {
		if resp, body := e.do(t, "GET", "/api/v1/executions?status="+st, e.tokens[RoleAdmin], nil); resp.StatusCode != 200 {
			t.Errorf("status %s: %d %s", st, resp.StatusCode, body)
		}
	}
	for _, c := range []struct{ query, field string }{
		{"status=done", "status"},
		{"status=Succeeded", "status"},
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"limit=x", "limit"},
		{"scrip=backup", "scrip"},
	} {
		resp, body := e.do(t, "GET", "/api/v1/executions?"+c.query, e.tokens[RoleAdmin], nil)
		if got := wantErr(t, resp, body, http.StatusBadRequest, CodeBadRequest); got.Field != c.field {
			t.Errorf("%s: field %q, want %q", c.query, got.Field, c.field)
		}
	}

	e.runner.listFn = func(context.Context, runner.ExecFilter) ([]*runner.Execution, error) {
		return nil, errors.New("kv: gone")
	}
	resp, body = e.do(t, "GET", "/api/v1/executions", e.tokens[RoleAdmin], nil)
	wantErr(t, resp, body, http.StatusInternalServerError, CodeInternal)
}

func TestGetExecution(t *testing.T) {
	e := newEnv(t)
	e.runner.getFn = func(_ context.Context, id string) (*runner.Execution, error) {
		if id != "exec-1" {
			return nil, fmt.Errorf("%s: %w", id, runner.ErrNotFound)
		}
		ex := testExecution(id, runner.StatusOOM)
		ex.Enforcement = map[string]string{"memory": "cgroup2 memory.max"}
		ex.PeakMemory, ex.CPUTimeMS = 256<<20, 1234
		return ex, nil
	}
	resp, body := e.do(t, "GET", "/api/v1/executions/exec-1", e.tokens[RoleViewer], nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("get: %d %s", resp.StatusCode, body)
	}
	if ex := decodeExecution(t, body); ex.Status != runner.StatusOOM || ex.Enforcement["memory"] != "cgroup2 memory.max" || ex.PeakMemory != 256<<20 {
		t.Errorf("answer %s", body)
	}
	resp, body = e.do(t, "GET", "/api/v1/executions/exec-9", e.tokens[RoleViewer], nil)
	if got := wantErr(t, resp, body, http.StatusNotFound, CodeNotFound); got.Object != "Execution/exec-9" {
		t.Errorf("object %q", got.Object)
	}
	resp, body = e.do(t, "GET", "/api/v1/executions/exec-1?follow=true", e.tokens[RoleViewer], nil)
	wantErr(t, resp, body, http.StatusBadRequest, CodeBadRequest)
}

func TestCancelExecution(t *testing.T) {
	e := newEnv(t)
	var users sync.Map
	e.runner.cancelFn = func(_ context.Context, id, user string) (*runner.Execution, error) {
		users.Store(user, id)
		switch id {
		case "exec-done":
			return testExecution(id, runner.StatusSucceeded), fmt.Errorf("%s is succeeded: %w", id, runner.ErrFinal)
		case "exec-none":
			return nil, fmt.Errorf("%s: %w", id, runner.ErrNotFound)
		}
		ex := testExecution(id, runner.StatusCancelled)
		ex.Reason = "cancelled by " + user
		return ex, nil
	}
	for _, role := range []Role{RoleAdmin, RoleOperator, RoleScript} {
		resp, body := e.do(t, "POST", "/api/v1/executions/exec-1/cancel", e.tokens[role], nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: cancel: %d %s", role, resp.StatusCode, body)
		}
		if ex := decodeExecution(t, body); ex.Status != runner.StatusCancelled || ex.Reason != "cancelled by t-"+string(role) {
			t.Errorf("%s: answer %s", role, body)
		}
		if _, ok := users.Load("t-" + string(role)); !ok {
			t.Errorf("%s: the runner was not told who cancelled", role)
		}
	}
	resp, body := e.do(t, "POST", "/api/v1/executions/exec-1/cancel", e.tokens[RoleViewer], nil)
	wantErr(t, resp, body, http.StatusForbidden, CodeForbidden)
	if _, ok := users.Load("t-viewer"); ok {
		t.Error("a viewer's cancel reached the runner")
	}

	resp, body = e.do(t, "POST", "/api/v1/executions/exec-done/cancel", e.tokens[RoleAdmin], nil)
	got := wantErr(t, resp, body, http.StatusConflict, CodeConflict)
	if got.Object != "Execution/exec-done" || !strings.Contains(got.Message, "already ended (succeeded)") {
		t.Errorf("conflict %s", body)
	}
	resp, body = e.do(t, "POST", "/api/v1/executions/exec-none/cancel", e.tokens[RoleAdmin], nil)
	if got := wantErr(t, resp, body, http.StatusNotFound, CodeNotFound); got.Object != "Execution/exec-none" {
		t.Errorf("object %q", got.Object)
	}
}

func TestExecutionLogs(t *testing.T) {
	e := newEnv(t)
	e.runner.getFn = func(_ context.Context, id string) (*runner.Execution, error) {
		if id != "exec-1" {
			return nil, fmt.Errorf("%s: %w", id, runner.ErrNotFound)
		}
		ex := testExecution(id, runner.StatusSucceeded)
		ex.Stdout, ex.Stderr, ex.StderrTruncated = "hello\n", "warn", true
		return ex, nil
	}
	resp, body := e.do(t, "GET", "/api/v1/executions/exec-1/logs", e.tokens[RoleViewer], nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("logs: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	want := `{"stdout":"hello\n","stderr":"warn","stdout_truncated":false,"stderr_truncated":true,"status":"succeeded"}`
	if strings.TrimSpace(string(body)) != want {
		t.Errorf("logs %s, want %s", body, want)
	}
	resp, body = e.do(t, "GET", "/api/v1/executions/exec-2/logs", e.tokens[RoleViewer], nil)
	if got := wantErr(t, resp, body, http.StatusNotFound, CodeNotFound); got.Object != "Execution/exec-2" {
		t.Errorf("object %q", got.Object)
	}
	resp, body = e.do(t, "GET", "/api/v1/executions/exec-2/logs?follow=true", e.tokens[RoleViewer], nil)
	wantErr(t, resp, body, http.StatusNotFound, CodeNotFound)
	resp, body = e.do(t, "GET", "/api/v1/executions/exec-1/logs?follow=sure", e.tokens[RoleViewer], nil)
	wantErr(t, resp, body, http.StatusBadRequest, CodeBadRequest)
	resp, body = e.do(t, "GET", "/api/v1/executions/exec-1/logs?tail=5", e.tokens[RoleViewer], nil)
	wantErr(t, resp, body, http.StatusBadRequest, CodeBadRequest)

	// Following a final execution sends everything and the end at once.
	resp, body = e.do(t, "GET", "/api/v1/executions/exec-1/logs?follow=true", e.tokens[RoleViewer], nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("follow: %d %v", resp.StatusCode, resp.Header)
	}
	if got, want := string(body), "event: stdout\ndata: hello\ndata: \n\nevent: stderr\ndata: warn\n\nevent: end\ndata: succeeded\n\n"; got != want {
		t.Errorf("follow of a final execution:\n%q\nwant\n%q", got, want)
	}
}

// TestFollowLogs checks the SSE framing of output that grows between
// reads: only new bytes are sent, split into data lines at "\n", with a
// trailing "\r" held back, and an end event with the final status.
func TestFollowLogs(t *testing.T) {
	e := newEnv(t)
	e.api.logPoll = 5 * time.Millisecond
	steps := []struct{ status, stdout, stderr string }{
		{runner.StatusQueued, "", ""},
		{runner.StatusRunning, "", ""},
		{runner.StatusRunning, "line1\nli", ""},
		{runner.StatusRunning, "line1\nline2\r", "oops"},
		{runner.StatusRunning, "line1\nline2\r", "oops"},
		{runner.StatusFailed, "line1\nline2\r\nbye", "oops\n"},
	}
	var calls atomic.Int32
	e.runner.getFn = func(_ context.Context, id string) (*runner.Execution, error) {
		i := min(int(calls.Add(1))-1, len(steps)-1)
		ex := testExecution(id, steps[i].status)
		ex.Stdout, ex.Stderr = steps[i].stdout, steps[i].stderr
		return ex, nil
	}
	resp, body := e.do(t, "GET", "/api/v1/executions/exec-1/logs?follow=true", e.tokens[RoleViewer], nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("follow: %d %v", resp.StatusCode, resp.Header)
	}
	want := "event: stdout\ndata: line1\ndata: li\n\n" +
		"event: stdout\ndata: ne2\n\n" +
		"event: stderr\ndata: oops\n\n" +
		"event: stdout\ndata: \ndata: bye\n\n" +
		"event: stderr\ndata: \ndata: \n\n" +
		"event: end\ndata: failed\n\n"
	if string(body) != want {
		t.Errorf("stream:\n%q\nwant\n%q", body, want)
	}
	if n := calls.Load(); n != int32(len(steps)) {
		t.Errorf("%d reads of the execution, want %d", n, len(steps))
	}
}

// TestFollowLogsEnds checks that a followed execution that never ends
// stops streaming when the caller goes away or the API stops, with
// keepalives meanwhile.
func TestFollowLogsEnds(t *testing.T) {
	e := newEnv(t)
	e.api.logPoll = 5 * time.Millisecond
	e.api.keepAlive = 20 * time.Millisecond
	var calls atomic.Int32
	e.runner.getFn = func(_ context.Context, id string) (*runner.Execution, error) {
		calls.Add(1)
		return testExecution(id, runner.StatusRunning), nil
	}
	req, _ := http.NewRequestWithContext(t.Context(), "GET", e.srv.URL+"/api/v1/executions/exec-1/logs?follow=true", nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens[RoleViewer])
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64)
	n, err := io.ReadAtLeast(resp.Body, buf, len(": keepalive\n\n"))
	if err != nil || string(buf[:n]) != ": keepalive\n\n" {
		t.Fatalf("first bytes %q, %v", buf[:n], err)
	}
	e.api.Stop(context.Background())
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("stream after Stop: %v", err)
	}
	if strings.Contains(string(rest), "event:") {
		t.Errorf("events after Stop: %q", rest)
	}
	if calls.Load() < 2 {
		t.Errorf("%d reads; the stream did not poll", calls.Load())
	}
}

func TestWriteLogEventsSplitsLongOutput(t *testing.T) {
	// "é" is 2 bytes: after the "a", a cut at maxLogEvent splits a rune.
	out := "a" + strings.Repeat("é", maxLogEvent) + "\nend"
	var buf bytes.Buffer
	sent := writeLogEvents(&buf, "stdout", out, 0, true)
	if sent != len(out) {
		t.Fatalf("sent %d of %d", sent, len(out))
	}
	var got strings.Builder
	events := 0
	for frame := range strings.SplitSeq(strings.TrimSuffix(buf.String(), "\n\n"), "\n\n") {
		events++
		lines := strings.Split(frame, "\n")
		if lines[0] != "event: stdout" {
			t.Fatalf("frame starts %q", lines[0])
		}
		var data []string
		for _, l := range lines[1:] {
			data = append(data, strings.TrimPrefix(l, "data: "))
		}
		piece := strings.Join(data, "\n")
		if len(piece) > maxLogEvent || !utf8.ValidString(piece) {
			t.Errorf("event %d: %d bytes, valid UTF-8 %v", events, len(piece), utf8.ValidString(piece))
		}
		got.WriteString(piece)
	}
	if events < 2 || got.String() != out {
		t.Errorf("%d events reassemble to %d bytes, want %d", events, got.Len(), len(out))
	}
}

func TestRunnerErrorMapping(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		code   Code
	}{
		{fmt.Errorf("x: %w", runner.ErrQueueFull), 429, CodeQueueFull},
		{fmt.Errorf("x: %w", runner.ErrNotFound), 404, CodeNotFound},
		{fmt.Errorf("x: %w", runner.ErrFinal), 409, CodeConflict},
	} {
		got, internal := toAPIError(c.err)
		if got.Status != c.status || got.Code != c.code || internal {
			t.Errorf("%v: %d %s (internal %v), want %d %s", c.err, got.Status, got.Code, internal, c.status, c.code)
		}
	}
}

func TestOpenAPIExecutions(t *testing.T) {
	e := newEnv(t)
	var doc struct {
		Paths      map[string]map[string]map[string]any `json:"paths"`
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(e.api.openapi, &doc); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Execution", "ExecutionLogs", "ExecutionStatus", "RunRequest"} {
		if doc.Components.Schemas[name] == nil {
			t.Errorf("no component schema %s", name)
		}
	}
	run := doc.Paths["/api/v1/controlscripts/{name}/run"]["post"]
	if rb, _ := run["requestBody"].(map[string]any); rb == nil || rb["required"] != false {
		t.Errorf("run requestBody %v, want optional", run["requestBody"])
	}
	responses, _ := run["responses"].(map[string]any)
	if responses["202"] == nil || responses["200"] == nil {
		t.Errorf("run responses %v, want 202 and 200", responses)
	}
	logs := doc.Paths["/api/v1/executions/{id}/logs"]["get"]
	content, _ := logs["responses"].(map[string]any)["200"].(map[string]any)["content"].(map[string]any)
	if content["application/json"] == nil || content["text/event-stream"] == nil {
		t.Errorf("logs content %v, want JSON and an event stream", content)
	}
}
