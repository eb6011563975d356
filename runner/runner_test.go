package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/events"
)

// harness is a runner on a real embedded NATS with a real object store.
type harness struct {
	r     *Runner
	store *config.Store
	bus   *events.Bus
	data  string
}

func newHarness(t *testing.T, mutate func(*Options)) *harness {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the sandbox needs root")
	}
	if shimBin == "" {
		t.Skip("no vigil binary for the sandbox shim")
	}
	ctx := context.Background()
	data := t.TempDir()
	bus, err := events.StartBus(ctx, events.BusOptions{StoreDir: filepath.Join(data, "jetstream")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Stop)
	c, _ := config.NewAESCipher(make([]byte, 32))
	store, err := config.OpenStore(ctx, bus.Conn(), bus.JetStream(), config.StoreOptions{Cipher: c})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		NC: bus.Conn(), JS: bus.JetStream(), Store: store, Events: bus, Exe: shimBin,
		DataDir: data, RunDir: filepath.Join(t.TempDir(), "runs"), ID: "test-runner", Grace: 2 * time.Second,
		CgroupParent: fmt.Sprintf("vigil-test-%d", os.Getpid()),
	}
	if mutate != nil {
		mutate(&opts)
	}
	r, err := New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cg := r.cgroups
	t.Cleanup(func() {
		r.Stop(context.Background())
		if cg != nil {
			cgCleanupParents(t, cg) // the parent cgroups, made by New
		}
	})
	return &harness{r: r, store: store, bus: bus, data: data}
}

func (h *harness) script(t *testing.T, name, spec string) {
	t.Helper()
	if _, err := h.store.Apply(context.Background(), []*config.Object{{Kind: KindControlScript, Name: name, Spec: json.RawMessage(spec)}}, config.ApplyOptions{User: "t"}); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) runWait(t *testing.T, name, alert string) *Execution {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ex, err := h.r.Submit(ctx, RunRequest{Script: name, User: "tester", Alert: json.RawMessage(alert)})
	if err != nil {
		t.Fatal(err)
	}
	final, err := h.r.Wait(ctx, ex.ID)
	if err != nil {
		t.Fatalf("wait %s: %v", ex.ID, err)
	}
	return final
}

func src(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestRunHello(t *testing.T) {
	h := newHarness(t, nil)
	h.script(t, "hello", `{"source": `+src(`import sys, json, os
alert = json.loads(sys.argv[1])
print("hello", alert["name"], sys.argv[0].endswith(".py"), __name__)
print("token" if os.environ["API_TOKEN"].startswith("vgl_") or os.environ["API_TOKEN"] == "" else "bad", file=sys.stderr)
`)+`, "timeout": "20s"}`)
	ex := h.runWait(t, "hello", `{"name": "a1"}`)
	if ex.Status != StatusSucceeded || ex.ExitCode == nil || *ex.ExitCode != 0 {
		t.Fatalf("status %s exit %v reason %q stderr %q", ex.Status, ex.ExitCode, ex.Reason, ex.Stderr)
	}
	if ex.Stdout != "hello a1 True __main__\n" {
		t.Fatalf("stdout %q", ex.Stdout)
	}
	for _, k := range []string{"memory", "pids", "cpu", "open_files", "output"} {
		if ex.Enforcement[k] == "" {
			t.Errorf("no mechanism recorded for %s: %v", k, ex.Enforcement)
		}
	}
	if ex.Started == nil || ex.Finished == nil || ex.Runner != "test-runner" || ex.Attempt != 1 {
		t.Fatalf("record: %+v", ex)
	}
	// The result event is published (just after the record is final).
	deadline := time.Now().Add(10 * time.Second)
	for {
		stored, _, err := h.bus.List(context.Background(), events.Filter{EventID: "CONTROLSCRIPT_SUCCEEDED"})
		if err == nil && len(stored) == 1 && strings.Contains(string(stored[0].Data), ex.ID) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("result event: %v %d", err, len(stored))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunStatuses(t *testing.T) {
	h := newHarness(t, nil)
	h.script(t, "fails", `{"source": "import sys\nprint('bye')\nsys.exit(3)\n"}`)
	h.script(t, "slow", `{"source": "import time\ntime.sleep(30)\n", "timeout": "1s"}`)
	ex := h.runWait(t, "fails", "")
	if ex.Status != StatusFailed || *ex.ExitCode != 3 || ex.Stdout != "bye\n" {
		t.Fatalf("fails: %+v", ex)
	}
	ex = h.runWait(t, "slow", "")
	if ex.Status != StatusTimeout {
		t.Fatalf("slow: %s %s", ex.Status, ex.Reason)
	}
	// Cancel a running execution.
	h.script(t, "long", `{"source": "import time\nprint('start', flush=True)\ntime.sleep(60)\n", "timeout": "60s"}`)
	ctx := context.Background()
	sub, err := h.r.Submit(ctx, RunRequest{Script: "long", User: "t"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		cur, _ := h.r.Get(ctx, sub.ID)
		if cur != nil && cur.Status == StatusRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("never running")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	ex, err = h.r.Cancel(cctx, sub.ID, "t")
	if err != nil || ex.Status != StatusCancelled {
		t.Fatalf("cancel: %v %+v", err, ex)
	}
	if _, err := h.r.Cancel(cctx, sub.ID, "t"); !errors.Is(err, ErrFinal) {
		t.Fatalf("cancel twice: %v", err)
	}
	if _, err := h.r.Submit(ctx, RunRequest{Script: "nope"}); !errors.Is(err, config.ErrNotFound) {
		t.Fatalf("unknown script: %v", err)
	}
}

func TestRunSecretsMaskedAndOutputCapped(t *testing.T) {
	h := newHarness(t, nil)
	spec, _ := json.Marshal(config.SecretSpec{Data: map[string]string{"db-password": "s3cr3t-value"}})
	if _, err := h.store.Apply(context.Background(), []*config.Object{{Kind: "Secret", Name: "db", Spec: spec}}, config.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	h.script(t, "leaky", `{"source": `+src(`import os, sys
print("pw=" + os.environ["DB_PASSWORD"])
sys.stdout.write("x" * 5000)
`)+`, "secrets": ["db"], "limits": {"output": "1Ki"}}`)
	ex := h.runWait(t, "leaky", "")
	if ex.Status != StatusSucceeded {
		t.Fatalf("%s %s %s", ex.Status, ex.Reason, ex.Stderr)
	}
	if strings.Contains(ex.Stdout, "s3cr3t-value") || !strings.Contains(ex.Stdout, "pw=<secret>") {
		t.Fatalf("secret not masked: %q", ex.Stdout[:40])
	}
	if !ex.StdoutTruncated || !strings.Contains(ex.Stdout, "output truncated") || len(ex.Stdout) > 1200 {
		t.Fatalf("output not capped: truncated=%v len=%d", ex.StdoutTruncated, len(ex.Stdout))
	}
}

// TestLiveOutput: a running execution's record gets its complete output
// lines as they come, secrets masked, without a line still being written
// or a secret's first bytes.
func TestLiveOutput(t *testing.T) {
	h := newHarness(t, nil)
	spec, _ := json.Marshal(config.SecretSpec{Data: map[string]string{"token": "tok-123456"}})
	if _, err := h.store.Apply(context.Background(), []*config.Object{{Kind: "Secret", Name: "api", Spec: spec}}, config.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	h.script(t, "slow", `{"source": `+src(`import os, sys, time
print("step 1 token=" + os.environ["TOKEN"])
sys.stdout.write("step 2 half")
sys.stdout.write(" token=" + os.environ["TOKEN"][:4])
sys.stdout.flush()
print("oops", file=sys.stderr)
time.sleep(3)
print(os.environ["TOKEN"][4:] + " done")
`)+`, "secrets": ["api"]}`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ex, err := h.r.Submit(ctx, RunRequest{Script: "slow", User: "tester"})
	if err != nil {
		t.Fatal(err)
	}
	var live *Execution
	for live == nil {
		got, err := h.r.Get(ctx, ex.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == StatusRunning && got.Stdout != "" && got.Stderr != "" {
			live = got
		} else if Final(got.Status) {
			t.Fatalf("the run ended (%s) before its output was seen while running", got.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if live.Stdout != "step 1 token=<secret>\n" || live.Stderr != "oops\n" {
		t.Fatalf("live output %q %q", live.Stdout, live.Stderr)
	}
	final, err := h.r.Wait(ctx, ex.ID)
	if err != nil {
		t.Fatal(err)
	}
	if final.Stdout != "step 1 token=<secret>\nstep 2 half token=<secret> done\n" {
		t.Fatalf("final output %q", final.Stdout)
	}
}

func TestRecoverOrphanedRun(t *testing.T) {
	h := newHarness(t, nil)
	h.script(t, "s", `{"source": "print(1)\n", "retry": {"count": 1, "backoff": "1s"}}`)
	ctx := context.Background()
	now := time.Now().UTC()
	orphan := &Execution{
		ID: "exec-orphan-1", Script: "s", Trigger: TriggerManual, Attempt: 1, Status: StatusRunning,
		Runner: "test-runner", Queued: now, Started: &now,
	}
	if err := h.r.save(ctx, orphan); err != nil {
		t.Fatal(err)
	}
	if err := h.r.recover(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := h.r.Get(ctx, orphan.ID)
	if got.Status != StatusKilled || !strings.Contains(got.Reason, "vigil stopped") {
		t.Fatalf("orphan: %+v", got)
	}
	// The script has a retry: a second attempt runs and succeeds.
	deadline := time.Now().Add(30 * time.Second)
	for {
		list, _ := h.r.List(ctx, ExecFilter{Script: "s"})
		for _, ex := range list {
			if ex.RetryOf == orphan.ID && ex.Status == StatusSucceeded && ex.Attempt == 2 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no successful retry: %d executions", len(list))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPerScriptConcurrency(t *testing.T) {
	h := newHarness(t, nil)
	h.script(t, "one", `{"source": "import time\ntime.sleep(0.4)\n", "concurrency": 1}`)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var ids []string
	for range 3 {
		ex, err := h.r.Submit(ctx, RunRequest{Script: "one", User: "t"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ex.ID)
	}
	var done []*Execution
	for _, id := range ids {
		ex, err := h.r.Wait(ctx, id)
		if err != nil || ex.Status != StatusSucceeded {
			t.Fatalf("%s: %v %+v", id, err, ex)
		}
		done = append(done, ex)
	}
	for i, a := range done {
		for _, b := range done[i+1:] {
			if a.Started.Before(*b.Finished) && b.Started.Before(*a.Finished) {
				t.Fatalf("runs overlapped with concurrency 1: %s [%s, %s] and %s [%s, %s]",
					a.ID, a.Started, a.Finished, b.ID, b.Started, b.Finished)
			}
		}
	}
}

// TestQueueFull: a request that finds its script's queue (or the whole
// queue) full is refused with ErrQueueFull and recorded as rejected; while
// the queue is known to be full, more requests are refused at once without
// a record; a run ending frees the place.
func TestQueueFull(t *testing.T) {
	var clock atomic.Pointer[time.Time]
	h := newHarness(t, func(o *Options) {
		o.PoolSize, o.QueuePerScript, o.QueueMax = 1, 2, 3
		o.Now = func() time.Time {
			if c := clock.Load(); c != nil {
				return *c
			}
			return time.Now()
		}
	})
	h.script(t, "slow", `{"source": "import time\ntime.sleep(1)\n"}`)
	h.script(t, "other", `{"source": "pass\n"}`)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	submit := func(script string) (*Execution, error) {
		return h.r.Submit(ctx, RunRequest{Script: script, User: "t"})
	}
	records := func(script string) int {
		l, err := h.r.List(ctx, ExecFilter{Script: script})
		if err != nil {
			t.Fatal(err)
		}
		return len(l)
	}
	var slow []string
	for range 2 {
		ex, err := submit("slow")
		if err != nil {
			t.Fatal(err)
		}
		slow = append(slow, ex.ID)
	}
	// The third finds the queue full: refused, recorded. The clock stops
	// here, so that the hold below does not end while this slow machine
	// lists records.
	now := time.Now()
	clock.Store(&now)
	if _, err := submit("slow"); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third run: %v, want ErrQueueFull", err)
	}
	if n := records("slow"); n != 3 {
		t.Fatalf("%d records, want 2 queued and 1 rejected", n)
	}
	l, _ := h.r.List(ctx, ExecFilter{Script: "slow", Status: StatusRejected})
	if len(l) != 1 || l[0].Reason != "the run queue is full" {
		t.Fatalf("rejected records %+v", l)
	}
	// Known full: refused at once, nothing recorded; another script's
	// queue is not full.
	for range 5 {
		if _, err := submit("slow"); !errors.Is(err, ErrQueueFull) {
			t.Fatalf("run while known full: %v, want ErrQueueFull", err)
		}
	}
	if n := records("slow"); n != 3 {
		t.Fatalf("%d records after refusals while known full, want 3", n)
	}
	// After fullHold with no run ended here, the bus is asked again.
	later := now.Add(fullHold)
	clock.Store(&later)
	if _, err := submit("slow"); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("run after fullHold: %v, want ErrQueueFull", err)
	}
	if n := records("slow"); n != 4 {
		t.Fatalf("%d records, want the bus asked again after fullHold", n)
	}
	// The whole queue (3) full: "other" is refused too, then at once.
	clock.Store(nil)
	if _, err := submit("other"); err != nil {
		t.Fatal(err)
	}
	if _, err := submit("other"); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("run with the whole queue full: %v, want ErrQueueFull", err)
	}
	if _, err := submit("other"); !errors.Is(err, ErrQueueFull) || records("other") != 2 {
		t.Fatalf("run while the whole queue is known full: %v, %d records of other, want 2", err, records("other"))
	}
	// The first slow run ends: its place is free.
	if ex, err := h.r.Wait(ctx, slow[0]); err != nil || ex.Status != StatusSucceeded {
		t.Fatalf("first run: %v %+v", err, ex)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := submit("slow")
		if err == nil {
			break
		}
		if !errors.Is(err, ErrQueueFull) || time.Now().After(deadline) {
			t.Fatalf("run after a run ended: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCancelWhileQueuedNeverRuns: a run cancelled while it waits for a
// place in the pool stays cancelled and never starts, though this process
// dispatches it from the record it remembered queueing.
func TestCancelWhileQueuedNeverRuns(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.PoolSize = 1 })
	// A script that ran says so out of band, whatever its record says.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ran := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
			ran <- struct{}{}
		}
	}()
	h.script(t, "busy", `{"source": "import time\ntime.sleep(1)\n"}`)
	h.script(t, "later", `{"source": `+src(fmt.Sprintf("import socket\nsocket.create_connection(('127.0.0.1', %d))\nprint('ran')\n", ln.Addr().(*net.TCPAddr).Port))+`}`)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	busy, err := h.r.Submit(ctx, RunRequest{Script: "busy", User: "t"})
	if err != nil {
		t.Fatal(err)
	}
	later, err := h.r.Submit(ctx, RunRequest{Script: "later", User: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if _, rev, ok := h.r.submittedRecord(later.ID); !ok || rev == 0 {
		t.Fatalf("the queued record is not remembered with its revision (%d, %v)", rev, ok)
	}
	ex, err := h.r.Cancel(ctx, later.ID, "tester")
	if err != nil || ex.Status != StatusCancelled {
		t.Fatalf("cancel: %v %+v", err, ex)
	}
	if b, err := h.r.Wait(ctx, busy.ID); err != nil || b.Status != StatusSucceeded {
		t.Fatalf("busy: %v %+v", err, b)
	}
	// The pool is free: the cancelled request is taken and dropped.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, _, ok := h.r.submittedRecord(later.ID); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cancelled request was not dispatched")
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-ran:
		t.Fatal("the cancelled run's script ran")
	case <-time.After(500 * time.Millisecond): // a wrongly started run would have connected by now
	}
	got, err := h.r.Get(ctx, later.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusCancelled || got.Started != nil || got.Stdout != "" {
		t.Fatalf("cancelled run: %s started=%v stdout %q, want cancelled and never started", got.Status, got.Started, got.Stdout)
	}
}

// TestDeletedScriptRejectsQueuedRun: a queued run whose script is deleted
// before it starts ends rejected, naming the script; one cancelled first
// stays cancelled.
func TestDeletedScriptRejectsQueuedRun(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.PoolSize = 1 })
	h.script(t, "busy", `{"source": "import time\ntime.sleep(1)\n"}`)
	h.script(t, "doomed", `{"source": "print('ran')\n"}`)
	h.script(t, "doomed2", `{"source": "print('ran')\n"}`)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var ids []string
	for _, s := range []string{"busy", "doomed", "doomed2"} {
		ex, err := h.r.Submit(ctx, RunRequest{Script: s, User: "t"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ex.ID)
	}
	if _, err := h.r.Cancel(ctx, ids[2], "tester"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.Delete(ctx, []config.Ref{{Kind: KindControlScript, Name: "doomed"}, {Kind: KindControlScript, Name: "doomed2"}}, config.DeleteOptions{User: "t"}); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{StatusSucceeded, StatusRejected, StatusCancelled} {
		ex, err := h.r.Wait(ctx, ids[i])
		if err != nil {
			t.Fatal(err)
		}
		if ex.Status != want || ex.Stdout != "" {
			t.Errorf("run %d: %s %q stdout %q, want %s", i, ex.Status, ex.Reason, ex.Stdout, want)
		}
		if want == StatusRejected && !strings.Contains(ex.Reason, "script doomed") {
			t.Errorf("reason %q does not name the script", ex.Reason)
		}
	}
	time.Sleep(500 * time.Millisecond) // the cancelled one's request is taken by now
	if ex, _ := h.r.Get(ctx, ids[2]); ex.Status != StatusCancelled {
		t.Errorf("cancelled run became %s %q", ex.Status, ex.Reason)
	}
}
