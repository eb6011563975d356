package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/client"
	"github.com/vigilhq/vigil/vigiltest"
)

func intPtr(n int) *int { return &n }

// scriptOutcomes are the fake's ControlScripts, one per way to end.
func scriptOutcomes() map[string]client.Execution {
	return map[string]client.Execution{
		"ok": {
			Status: client.StatusSucceeded, ExitCode: intPtr(0), Stdout: "hello\r\nworld\n", Stderr: "note\n",
			CPUTimeMS: 1234, PeakMemory: 12 << 20,
			Enforcement: map[string]string{"memory": "cgroup v2 memory.max", "pids": "cgroup v2 pids.max", "cpu": "cgroup v2 cpu.max"},
		},
		"fail":      {Status: client.StatusFailed, ExitCode: intPtr(3), Stdout: "partial", Stderr: "Traceback: boom\n"},
		"fail-300":  {Status: client.StatusFailed, ExitCode: intPtr(300)},
		"no-python": {Status: client.StatusFailed, Reason: "exec: python3: not found"},
		"slow":      {Status: client.StatusTimeout, Reason: "ran past its timeout", ExitCode: intPtr(143), Signal: "SIGTERM"},
		"hog":       {Status: client.StatusOOM, Reason: "killed for using more memory than limits.memory", Signal: "SIGKILL"},
		"termed":    {Status: client.StatusKilled, Reason: "killed by SIGTERM", Signal: "SIGTERM"},
		"stopped":   {Status: client.StatusKilled, Reason: "the runner is stopping"},
		"nope-cg":   {Status: client.StatusRejected, Reason: "sandbox: no cgroup"},
		"cancel-me": {Status: client.StatusCancelled, Reason: "cancelled by admin"},
		"chatty":    {Status: client.StatusSucceeded, Stdout: "lots", StdoutTruncated: true},
		"odd":       {Status: "paused"},
	}
}

func TestRun(t *testing.T) {
	f := newFakeAPI(t)
	f.outcomes = scriptOutcomes()
	connect(t, f)

	r := vigil(t, "", "run", "ok")
	wantCode(t, r, 0)
	if r.stdout != "exec-1\n" || r.stderr != "" {
		t.Errorf("run: %q %q", r.stdout, r.stderr)
	}
	r = vigil(t, "", "run", "ok", "-o", "json")
	wantCode(t, r, 0)
	var ex client.Execution
	if err := json.Unmarshal([]byte(r.stdout), &ex); err != nil || ex.ID != "exec-2" || ex.Status != client.StatusQueued {
		t.Errorf("run -o json: %v %s", err, r.stdout)
	}

	// --wait prints the output verbatim, each stream to its own.
	r = vigil(t, "", "run", "ok", "--wait")
	wantCode(t, r, 0)
	if r.stdout != "hello\r\nworld\n" || r.stderr != "note\n" {
		t.Errorf("run --wait: stdout %q stderr %q", r.stdout, r.stderr)
	}
	f.mu.Lock()
	followed := strings.Join(f.requests, "\n") + "\n"
	f.mu.Unlock()
	if !strings.Contains(followed, "GET /api/v1/executions/exec-3/logs") || !strings.Contains(followed, "GET /api/v1/executions/exec-3\n") {
		t.Errorf("requests:\n%s", followed)
	}

	for _, tc := range []struct {
		script       string
		code         int
		stdout, line string
	}{
		{"fail", 3, "partial", ""},
		{"fail-300", 1, "", ""},
		{"no-python", 1, "", "execution exec-N failed: exec: python3: not found"},
		{"slow", 124, "", "execution exec-N timeout: ran past its timeout"},
		{"hog", 137, "", "execution exec-N oom: killed for using more memory than limits.memory"},
		{"termed", 143, "", "execution exec-N killed: killed by SIGTERM"},
		{"stopped", 137, "", "execution exec-N killed: the runner is stopping"},
		{"nope-cg", 126, "", "execution exec-N rejected: sandbox: no cgroup"},
		{"cancel-me", 130, "", "execution exec-N cancelled: cancelled by admin"},
		{"odd", 1, "", "execution exec-N paused"},
	} {
		t.Run(tc.script, func(t *testing.T) {
			r := vigil(t, "", "run", tc.script, "--wait")
			wantCode(t, r, tc.code)
			if r.stdout != tc.stdout {
				t.Errorf("stdout %q, want %q", r.stdout, tc.stdout)
			}
			f.mu.Lock()
			id := f.executions[len(f.executions)-1].ID
			wantErr := f.outcomes[tc.script].Stderr
			f.mu.Unlock()
			if tc.line != "" {
				wantErr += "vigil: " + strings.ReplaceAll(tc.line, "exec-N", id) + "\n"
			}
			if r.stderr != wantErr {
				t.Errorf("stderr %q, want %q", r.stderr, wantErr)
			}

			// -o json: the record instead of the output, the same code.
			r = vigil(t, "", "run", tc.script, "--wait", "-o", "json")
			wantCode(t, r, tc.code)
			var ex client.Execution
			if err := json.Unmarshal([]byte(r.stdout), &ex); err != nil || !ex.Final() || ex.Script != tc.script {
				t.Errorf("-o json: %v %s", err, r.stdout)
			}
			if r.stderr != "" {
				t.Errorf("-o json: stderr %q", r.stderr)
			}
		})
	}

	r = vigil(t, "", "run", "chatty", "--wait")
	wantCode(t, r, 0)
	if r.stdout != "lots" || !strings.HasSuffix(r.stderr, ": stdout was cut at limits.output\n") {
		t.Errorf("truncated: %q %q", r.stdout, r.stderr)
	}
}

func TestRunAlert(t *testing.T) {
	f := newFakeAPI(t)
	f.outcomes = scriptOutcomes()
	dir := t.TempDir()
	connect(t, f)
	file := writeFile(t, filepath.Join(dir, "alert.json"), "{\n  \"event_id\": \"SERVER_DOWN\",\n  \"obj_name\": \"web\"\n}\n")
	wantCode(t, vigil(t, "", "run", "ok", "--alert", file), 0)
	wantCode(t, vigil(t, `{"from": "stdin"}`, "run", "ok", "--alert", "-", "--wait"), 0)
	f.mu.Lock()
	bodies := append([]string(nil), f.runBodies...)
	alerts := []string{string(f.executions[0].Alert), string(f.executions[1].Alert)}
	f.mu.Unlock()
	if len(bodies) != 2 || bodies[0] != `{"alert":{"event_id":"SERVER_DOWN","obj_name":"web"}}` || bodies[1] != `{"alert":{"from":"stdin"}}` {
		t.Errorf("bodies %q", bodies)
	}
	if alerts[0] != `{"event_id":"SERVER_DOWN","obj_name":"web"}` || alerts[1] != `{"from":"stdin"}` {
		t.Errorf("alerts %q", alerts)
	}

	r := vigil(t, "", "run", "ok", "--alert", filepath.Join(dir, "missing.json"))
	wantCode(t, r, 1)
	if !strings.HasPrefix(r.stderr, "vigil: --alert: open ") {
		t.Errorf("missing file: %q", r.stderr)
	}
	big := writeFile(t, filepath.Join(dir, "big.json"), `{"x": "`+strings.Repeat("x", maxAlertFile)+`"}`)
	r = vigil(t, "", "run", "ok", "--alert", big)
	wantCode(t, r, 2)

	r = vigil(t, "", "run", "nope")
	wantCode(t, r, 1)
	if r.stderr != "vigil: ControlScript/nope: not found (not_found)\n" {
		t.Errorf("unknown script: %q", r.stderr)
	}
	f.mu.Lock()
	f.queueFull = true
	f.mu.Unlock()
	r = vigil(t, "", "run", "ok", "--wait")
	wantCode(t, r, 1)
	if r.stderr != "vigil: the run queue is full; try again later (queue_full)\n" {
		t.Errorf("queue full: %q", r.stderr)
	}
}

// TestRunWaitReconnects checks that a dropped log stream is followed
// again, and that an interrupt ends the wait with 130 and the id.
func TestRunWaitReconnects(t *testing.T) {
	f := newFakeAPI(t)
	f.outcomes = scriptOutcomes()
	f.dropFollows = 2
	connect(t, f)
	run := func(ctx context.Context, args ...string) (int, string, string) {
		var stdout, stderr vigiltest.SyncBuffer
		e := &env{
			stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr,
			getenv: os.Getenv, tailBackoff: 5 * time.Millisecond,
		}
		code := e.main(ctx, args)
		return code, stdout.String(), stderr.String()
	}
	code, stdout, stderr := run(context.Background(), "run", "fail", "--wait")
	if code != 3 || stdout != "partial" {
		t.Errorf("exit %d stdout %q stderr %q", code, stdout, stderr)
	}
	if strings.Count(stderr, "vigil: waiting for exec-1: ") != 2 || !strings.Contains(stderr, "event stream ended; retrying in 5ms") ||
		!strings.HasSuffix(stderr, "Traceback: boom\n") {
		t.Errorf("stderr %q", stderr)
	}

	f.mu.Lock()
	f.holdFollows = true
	f.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var (
		gotCode        int
		gotOut, gotErr string
	)
	go func() {
		defer close(done)
		gotCode, gotOut, gotErr = run(ctx, "run", "ok", "--wait")
	}()
	waitFor(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.executions) == 2
	})
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("run --wait did not stop on interrupt")
	}
	if gotCode != 130 || gotOut != "" ||
		gotErr != "vigil: interrupted; execution exec-2 goes on ('vigil executions cancel exec-2' stops it)\n" {
		t.Errorf("interrupted: exit %d stdout %q stderr %q", gotCode, gotOut, gotErr)
	}
}

func TestExecutionsCommands(t *testing.T) {
	f := newFakeAPI(t)
	f.outcomes = scriptOutcomes()
	connect(t, f)
	wantCode(t, vigil(t, "", "run", "ok", "--wait"), 0)       // exec-1
	wantCode(t, vigil(t, "", "run", "fail", "--wait"), 3)     // exec-2
	wantCode(t, vigil(t, "", "run", "termed", "--wait"), 143) // exec-3
	wantCode(t, vigil(t, "", "run", "ok"), 0)                 // exec-4, queued

	r := vigil(t, "", "executions", "list")
	wantCode(t, r, 0)
	var rows []string
	for line := range strings.SplitSeq(strings.TrimSpace(r.stdout), "\n") {
		rows = append(rows, strings.Join(strings.Fields(line), " "))
	}
	want := []string{
		"ID SCRIPT STATUS TRIGGER QUEUED DURATION EXIT",
		"exec-4 ok queued manual 2026-01-02T03:04:05Z - -",
		"exec-3 termed killed manual 2026-01-02T03:04:05Z 2.5s SIGTERM",
		"exec-2 fail failed manual 2026-01-02T03:04:05Z 2.5s 3",
		"exec-1 ok succeeded manual 2026-01-02T03:04:05Z 2.5s 0",
	}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Errorf("table:\n%s\nwant\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
	r = vigil(t, "", "executions", "list", "--status", "failed", "--script", "fail", "--limit", "5", "-o", "json")
	wantCode(t, r, 0)
	var list struct {
		Items []client.Execution `json:"items"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Items) != 1 || list.Items[0].ID != "exec-2" {
		t.Errorf("list -o json: %v %s", err, r.stdout)
	}
	f.mu.Lock()
	last := f.requests[len(f.requests)-1]
	f.mu.Unlock()
	if last != "GET /api/v1/executions" {
		t.Errorf("last request %q", last)
	}
	r = vigil(t, "", "executions", "list", "--script", "none", "-o", "json")
	wantCode(t, r, 0)
	if strings.Join(strings.Fields(r.stdout), "") != `{"items":[]}` {
		t.Errorf("empty list: %q", r.stdout)
	}

	r = vigil(t, "", "executions", "show", "exec-1")
	wantCode(t, r, 0)
	for _, want := range []string{
		"ID:                 exec-1\n",
		"Script:             ok (revision 1)\n",
		"Status:             succeeded\n",
		"Trigger:            manual by admin\n",
		"Started:            2026-01-02T03:04:06Z\n",
		"Duration:           2.5s\n",
		"Exit code:          0\n",
		"CPU time:           1.2s\n",
		"Peak memory:        12Mi\n",
		"Stdout:             13 bytes\n",
		"Enforcement:\n  cpu:              cgroup v2 cpu.max\n  memory:           cgroup v2 memory.max\n  pids:             cgroup v2 pids.max\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("show lacks %q:\n%s", want, r.stdout)
		}
	}
	r = vigil(t, "", "executions", "show", "exec-3")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "Reason:             killed by SIGTERM\n") || !strings.Contains(r.stdout, "Signal:             SIGTERM\n") ||
		!strings.Contains(r.stdout, "Enforcement:        -\n") || strings.Contains(r.stdout, "Exit code") {
		t.Errorf("show killed:\n%s", r.stdout)
	}
	r = vigil(t, "", "execution", "show", "exec-2", "-o", "yaml")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "id: exec-2\n") || !strings.Contains(r.stdout, "exit_code: 3\n") {
		t.Errorf("show -o yaml:\n%s", r.stdout)
	}
	r = vigil(t, "", "executions", "show", "exec-2", "-o", "json")
	wantCode(t, r, 0)
	if err := json.Unmarshal([]byte(r.stdout), &client.Execution{}); err != nil {
		t.Errorf("show -o json: %v", err)
	}
	r = vigil(t, "", "executions", "show", "exec-9")
	wantCode(t, r, 1)
	if r.stderr != "vigil: Execution/exec-9: not found (not_found)\n" {
		t.Errorf("show unknown: %q", r.stderr)
	}

	r = vigil(t, "", "executions", "logs", "exec-1")
	wantCode(t, r, 0)
	if r.stdout != "hello\r\nworld\n" || r.stderr != "note\n" {
		t.Errorf("logs: %q %q", r.stdout, r.stderr)
	}
	// Following the queued exec-4 runs it to its end (in the fake).
	r = vigil(t, "", "executions", "logs", "exec-4", "-f")
	wantCode(t, r, 0)
	if r.stdout != "hello\nworld\n" || r.stderr != "note\n" {
		t.Errorf("logs -f: %q %q", r.stdout, r.stderr)
	}

	wantCode(t, vigil(t, "", "run", "ok"), 0) // exec-5, queued
	r = vigil(t, "", "executions", "cancel", "exec-5")
	wantCode(t, r, 0)
	if r.stdout != "execution exec-5 cancelled: cancelled by admin while queued\n" {
		t.Errorf("cancel: %q", r.stdout)
	}
	r = vigil(t, "", "executions", "cancel", "exec-5")
	wantCode(t, r, 1)
	if r.stderr != "vigil: Execution/exec-5 already ended (cancelled) (conflict)\n" {
		t.Errorf("cancel again: %q", r.stderr)
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		ex   client.Execution
		want int
	}{
		{client.Execution{Status: client.StatusSucceeded}, 0},
		{client.Execution{Status: client.StatusSucceeded, ExitCode: intPtr(0)}, 0},
		{client.Execution{Status: client.StatusFailed, ExitCode: intPtr(2)}, 2},
		{client.Execution{Status: client.StatusFailed, ExitCode: intPtr(255)}, 255},
		{client.Execution{Status: client.StatusFailed, ExitCode: intPtr(0)}, 1},
		{client.Execution{Status: client.StatusFailed, ExitCode: intPtr(-1)}, 1},
		{client.Execution{Status: client.StatusFailed}, 1},
		{client.Execution{Status: client.StatusTimeout}, 124},
		{client.Execution{Status: client.StatusOOM}, 137},
		{client.Execution{Status: client.StatusKilled, Signal: "SIGKILL"}, 137},
		{client.Execution{Status: client.StatusKilled, Signal: "SIGSEGV"}, 139},
		{client.Execution{Status: client.StatusKilled}, 137},
		{client.Execution{Status: client.StatusCancelled}, 130},
		{client.Execution{Status: client.StatusRejected}, 126},
		{client.Execution{Status: "future"}, 1},
	} {
		if got := exitCode(&tc.ex); got != tc.want {
			t.Errorf("exitCode(%s, exit %v, signal %q) = %d, want %d", tc.ex.Status, tc.ex.ExitCode, tc.ex.Signal, got, tc.want)
		}
	}
}

func TestFmtDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                       "-",
		-time.Second:            "-",
		350 * time.Millisecond:  "350ms",
		2540 * time.Millisecond: "2.5s",
		65 * time.Second:        "1m5s",
	} {
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
