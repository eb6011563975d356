package runner

import (
	"encoding/json"
	"errors"
	"time"
)

// Execution statuses. The first three are in progress; the rest are final.
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusTimeout   = "timeout"
	StatusOOM       = "oom"
	StatusKilled    = "killed"
	StatusCancelled = "cancelled"
	StatusRejected  = "rejected"
)

// Triggers of an execution.
const (
	TriggerManual   = "manual"
	TriggerAlert    = "alert"
	TriggerSchedule = "schedule"
)

// Final reports whether status ends an execution.
func Final(status string) bool {
	switch status {
	case StatusQueued, StatusRunning, "":
		return false
	}
	return true
}

// ErrNotFound is wrapped by errors about executions that do not exist.
var ErrNotFound = errors.New("execution not found")

// ErrQueueFull is wrapped when a run request finds its queue full.
var ErrQueueFull = errors.New("run queue full")

// ErrFinal is wrapped when cancelling an execution that already ended.
var ErrFinal = errors.New("execution already ended")

// Execution is the record of one run of a ControlScript.
type Execution struct {
	ID             string          `json:"id"`
	Script         string          `json:"script"`
	ScriptRevision uint64          `json:"script_revision,omitempty"`
	Trigger        string          `json:"trigger"`
	TriggeredBy    string          `json:"triggered_by,omitempty"`
	Alert          json.RawMessage `json:"alert,omitempty"`
	Attempt        int             `json:"attempt"`
	RetryOf        string          `json:"retry_of,omitempty"`
	Status         string          `json:"status"`
	Reason         string          `json:"reason,omitempty"`
	Runner         string          `json:"runner,omitempty"`

	Queued    time.Time  `json:"queued"`
	NotBefore *time.Time `json:"not_before,omitempty"` // a retry waits for its backoff
	Started   *time.Time `json:"started,omitempty"`
	FirstLine *time.Time `json:"first_line,omitempty"` // the script's first instruction
	Finished  *time.Time `json:"finished,omitempty"`

	ExitCode *int   `json:"exit_code,omitempty"`
	Signal   string `json:"signal,omitempty"`

	Stdout          string `json:"stdout"`
	Stderr          string `json:"stderr"`
	StdoutTruncated bool   `json:"stdout_truncated,omitempty"`
	StderrTruncated bool   `json:"stderr_truncated,omitempty"`

	CPUTimeMS         int64             `json:"cpu_time_ms"`
	PeakMemory        int64             `json:"peak_memory"`
	KilledDescendants int               `json:"killed_descendants"`
	Enforcement       map[string]string `json:"enforcement,omitempty"` // limit → mechanism
	// Cgroup names the run's cgroup under the runner's parent: the
	// execution id, or for a warm run the name it got when it was prepared.
	Cgroup string `json:"cgroup,omitempty"`
	// Warm is set when the run was forked from a warm interpreter.
	Warm bool `json:"warm,omitempty"`
}

// RunRequest asks for a run of a ControlScript.
type RunRequest struct {
	// ID, when set, is the execution's id ("exec-" and a UUID): a request
	// with the id of an existing execution returns it and runs nothing,
	// so a caller that repeats a request after a crash runs the script
	// once. Default: a new UUIDv7.
	ID      string          `json:"id,omitempty"`
	Script  string          `json:"script"`
	Trigger string          `json:"trigger"`
	User    string          `json:"user"`
	Alert   json.RawMessage `json:"alert,omitempty"`
}

// ExecFilter selects executions in a list.
type ExecFilter struct {
	Script string
	Status string
	Limit  int
}
