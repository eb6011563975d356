package client_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/vigilhq/vigil/client"
	"github.com/vigilhq/vigil/runner"
)

// TestExecutionMatchesRunner proves that client.Execution reads every field
// of the runner's execution record and writes it back unchanged, so the two
// cannot drift apart unnoticed.
func TestExecutionMatchesRunner(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	code := 3
	full := runner.Execution{
		ID: "exec-1", Script: "backup", ScriptRevision: 7, Trigger: runner.TriggerAlert, TriggeredBy: "rule/x",
		Alert: json.RawMessage(`{"event_id":"SERVER_DOWN"}`), Attempt: 2, RetryOf: "exec-0",
		Status: runner.StatusFailed, Reason: "exit 3", Runner: "node-1",
		Queued: now, NotBefore: &now, Started: &now, FirstLine: &now, Finished: &now, ExitCode: &code, Signal: "SIGTERM",
		Stdout: "out", Stderr: "err", StdoutTruncated: true, StderrTruncated: true,
		CPUTimeMS: 5, PeakMemory: 6, KilledDescendants: 1, Enforcement: map[string]string{"memory": "cgroup"}, Cgroup: "warm-1", Warm: true,
	}
	// Every field is set, so that omitempty hides none.
	v := reflect.ValueOf(full)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("the test leaves runner.Execution.%s unset", v.Type().Field(i).Name)
		}
	}
	want, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	var ex client.Execution
	dec := json.NewDecoder(bytes.NewReader(want))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ex); err != nil {
		t.Fatalf("client.Execution does not read the runner's record: %v", err)
	}
	got, err := json.Marshal(ex)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("client.Execution writes\n%s\nthe runner wrote\n%s", got, want)
	}
	if client.FinalStatus(runner.StatusQueued) || client.FinalStatus(runner.StatusRunning) || !client.FinalStatus(runner.StatusRejected) {
		t.Error("FinalStatus disagrees with runner.Final")
	}
	for _, st := range []string{
		runner.StatusQueued, runner.StatusRunning, runner.StatusSucceeded, runner.StatusFailed, runner.StatusTimeout,
		runner.StatusOOM, runner.StatusKilled, runner.StatusCancelled, runner.StatusRejected, "",
	} {
		if client.FinalStatus(st) != runner.Final(st) {
			t.Errorf("FinalStatus(%q) = %v, runner.Final says %v", st, client.FinalStatus(st), runner.Final(st))
		}
	}
}
