package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Execution statuses: queued and running are in progress, the others final.
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

// Execution is the record of one run of a ControlScript, as the API
// answers it (the JSON of the runner's execution record).
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
	NotBefore *time.Time `json:"not_before,omitempty"`
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
	Cgroup            string            `json:"cgroup,omitempty"`
	Warm              bool              `json:"warm,omitempty"`
}

// Final reports whether the execution has ended.
func (e *Execution) Final() bool { return FinalStatus(e.Status) }

// FinalStatus reports whether an execution with status has ended.
func FinalStatus(status string) bool {
	switch status {
	case StatusQueued, StatusRunning, "":
		return false
	}
	return true
}

// Duration is how long the execution ran (from its start to its end, or
// to now while it runs), or 0 before it starts.
func (e *Execution) Duration(now time.Time) time.Duration {
	if e.Started == nil {
		return 0
	}
	end := now
	if e.Finished != nil {
		end = *e.Finished
	}
	return max(end.Sub(*e.Started), 0)
}

// ExecutionLogs is an execution's output.
type ExecutionLogs struct {
	Stdout          string `json:"stdout"`
	Stderr          string `json:"stderr"`
	StdoutTruncated bool   `json:"stdout_truncated"`
	StderrTruncated bool   `json:"stderr_truncated"`
	Status          string `json:"status"`
}

// RunScript runs the ControlScript called name, with alert (a JSON object,
// or nil for none). Without wait it returns the queued execution; with
// wait it returns once the execution is final, or, if the server stops
// first, with the execution as it stands (check [Execution.Final]).
// A full run queue is an *APIError with code "queue_full".
func (c *Client) RunScript(ctx context.Context, name string, alert json.RawMessage, wait bool) (*Execution, error) {
	in := struct {
		Alert json.RawMessage `json:"alert,omitempty"`
		Wait  bool            `json:"wait,omitempty"`
	}{alert, wait}
	var out Execution
	if err := c.do(ctx, http.MethodPost, "/api/v1/controlscripts/"+url.PathEscape(name)+"/run", nil, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListExecutions lists executions, newest first: only those of script and
// with status when they are set, and at most limit (0: the server's
// default of 100).
func (c *Client) ListExecutions(ctx context.Context, script, status string, limit int) ([]*Execution, error) {
	q := url.Values{}
	if script != "" {
		q.Set("script", script)
	}
	if status != "" {
		q.Set("status", status)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out struct {
		Items []*Execution `json:"items"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/executions", q, nil, &out)
	return out.Items, err
}

func executionPath(id string) string { return "/api/v1/executions/" + url.PathEscape(id) }

// GetExecution returns one execution.
func (c *Client) GetExecution(ctx context.Context, id string) (*Execution, error) {
	var out Execution
	if err := c.do(ctx, http.MethodGet, executionPath(id), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ExecutionLogs returns an execution's output as it stands.
func (c *Client) ExecutionLogs(ctx context.Context, id string) (*ExecutionLogs, error) {
	var out ExecutionLogs
	if err := c.do(ctx, http.MethodGet, executionPath(id)+"/logs", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CancelExecution cancels a queued or running execution and returns it
// once it has ended. An execution that already ended is an *APIError with
// code "conflict".
func (c *Client) CancelExecution(ctx context.Context, id string) (*Execution, error) {
	var out Execution
	if err := c.do(ctx, http.MethodPost, executionPath(id)+"/cancel", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// errLogsEnded stops reading a followed log at its end event.
var errLogsEnded = errors.New("end of the logs")

// FollowExecutionLogs streams an execution's output: it calls fn with
// "stdout" or "stderr" and each new piece of output, in order, until the
// execution ends, and returns its final status. The pieces of one stream
// concatenate to its output, except that the stream cannot carry "\r":
// "\r\n" and a lone "\r" arrive as "\n" (ExecutionLogs and GetExecution
// have the output exactly). It returns fn's error as it is, ctx's error
// when ctx ends, and an error wrapping [ErrStreamEnded] when the server
// closes the stream before the end.
func (c *Client) FollowExecutionLogs(ctx context.Context, id string, fn func(stream string, data []byte) error) (string, error) {
	q := url.Values{"follow": {"true"}}
	req, err := c.newRequest(ctx, http.MethodGet, executionPath(id)+"/logs", q, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := c.send(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return "", c.errorFrom(resp)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return "", fmt.Errorf("follow logs of %s from %s: answer is %q, not an event stream", id, c.addr, resp.Header.Get("Content-Type"))
	}
	var status string
	err = readSSEEvents(resp.Body, "", func(_, event string, data []byte) error {
		switch event {
		case "stdout", "stderr":
			return fn(event, data)
		case "end":
			status = string(data)
			return errLogsEnded
		}
		return nil // an event this client does not know
	})
	var cb callbackError
	switch {
	case errors.As(err, &cb) && errors.Is(cb.err, errLogsEnded):
		return status, nil
	case ctx.Err() != nil:
		return "", ctx.Err()
	case err == nil:
		return "", fmt.Errorf("follow logs of %s from %s: %w", id, c.addr, ErrStreamEnded)
	case errors.As(err, &cb):
		return "", cb.err
	default:
		return "", fmt.Errorf("follow logs of %s from %s: %w", id, c.addr, err)
	}
}
