package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/runner"
)

// Runner is what the API needs from the ControlScript runner.
type Runner interface {
	// Submit queues a run. Errors: config.ErrNotFound when there is no
	// such ControlScript, runner.ErrQueueFull, *config.FieldError for a
	// request the runner refuses.
	Submit(ctx context.Context, req runner.RunRequest) (*runner.Execution, error)
	// Get returns an execution; runner.ErrNotFound when there is none.
	Get(ctx context.Context, id string) (*runner.Execution, error)
	// List returns the executions matching f, newest first.
	List(ctx context.Context, f runner.ExecFilter) ([]*runner.Execution, error)
	// Cancel ends a queued or running execution; runner.ErrFinal when it
	// already ended.
	Cancel(ctx context.Context, id, user string) (*runner.Execution, error)
	// Wait returns when the execution is final, or when ctx ends.
	Wait(ctx context.Context, id string) (*runner.Execution, error)
}

// Bounds of GET /api/v1/executions.
const (
	DefaultExecutionLimit = 100
	MaxExecutionLimit     = 1000
)

// logPollInterval is how often a followed execution's output is read.
const logPollInterval = 200 * time.Millisecond

// maxLogEvent bounds the data of one stdout or stderr event of a followed
// execution; longer output is sent as several events.
const maxLogEvent = 64 << 10

// ExecutionStatuses lists every execution status, in progress first.
var ExecutionStatuses = []string{
	runner.StatusQueued, runner.StatusRunning, runner.StatusSucceeded, runner.StatusFailed,
	runner.StatusTimeout, runner.StatusOOM, runner.StatusKilled, runner.StatusCancelled, runner.StatusRejected,
}

// runBody is the body of POST /api/v1/controlscripts/{name}/run.
type runBody struct {
	Alert json.RawMessage `json:"alert"`
	Wait  bool            `json:"wait"`
}

// executionList is the answer of GET /api/v1/executions.
type executionList struct {
	Items []*runner.Execution `json:"items"`
}

// executionLogs is the answer of GET /api/v1/executions/{id}/logs.
type executionLogs struct {
	Stdout          string `json:"stdout"`
	Stderr          string `json:"stderr"`
	StdoutTruncated bool   `json:"stdout_truncated"`
	StderrTruncated bool   `json:"stderr_truncated"`
	Status          string `json:"status"`
}

var errNoRunner = errUnavailable("the runner is not enabled")

// onlyQuery refuses query parameters other than names, so that a typo
// cannot change a request silently.
// runnerRequest answers the error when there is no runner or the query has
// a parameter other than names, and reports whether the handler goes on.
func (a *API) runnerRequest(w http.ResponseWriter, r *http.Request, names ...string) bool {
	if a.runner == nil {
		a.writeError(w, r, errNoRunner)
		return false
	}
	if err := onlyQuery(r, names...); err != nil {
		a.writeError(w, r, err)
		return false
	}
	return true
}

func onlyQuery(r *http.Request, names ...string) error {
	for name := range r.URL.Query() {
		known := false
		for _, n := range names {
			known = known || n == name
		}
		if !known {
			return errBadRequest(name, "unknown query parameter %q", name)
		}
	}
	return nil
}

// scriptError names the ControlScript in a not-found error from Submit.
func scriptError(err error, name string) error {
	if !errors.Is(err, config.ErrNotFound) || errors.Is(err, runner.ErrNotFound) {
		return err
	}
	object := runner.KindControlScript + "/" + name
	var nfe *config.NotFoundError
	if errors.As(err, &nfe) && nfe.Object != "" {
		object = nfe.Object
	}
	return errNotFound(object, object+": not found")
}

// executionError names the execution in not-found and already-ended
// errors; ex is what the runner answered with the error, if anything.
func executionError(err error, id string, ex *runner.Execution) error {
	object := "Execution/" + id
	switch {
	case errors.Is(err, runner.ErrNotFound):
		return errNotFound(object, object+": not found")
	case errors.Is(err, runner.ErrFinal):
		msg := object + " already ended"
		if ex != nil && ex.Status != "" {
			msg += " (" + ex.Status + ")"
		}
		return &Error{Status: http.StatusConflict, Code: CodeConflict, Object: object, Message: msg}
	}
	return err
}

// untilStop returns a context that also ends when the API stops, so that
// a long wait does not hold up a server shutdown.
func (a *API) untilStop(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	if run := a.running(); run != nil {
		stop := context.AfterFunc(run, cancel)
		return ctx, func() { stop(); cancel() }
	}
	return ctx, cancel
}

// beginEventStream sends the headers of a Server-Sent Events answer; false
// means the client is gone.
func (a *API) beginEventStream(w http.ResponseWriter) (*http.ResponseController, bool) {
	rc := a.clearWriteDeadline(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	return rc, rc.Flush() == nil
}

// clearWriteDeadline lets a long answer (a wait, a followed log) outlive a
// server write timeout.
func (a *API) clearWriteDeadline(w http.ResponseWriter) *http.ResponseController {
	rc := http.NewResponseController(w)
	if err := rc.SetWriteDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		a.log.Debug("clear write deadline", "err", err)
	}
	return rc
}

func (a *API) handleRun(w http.ResponseWriter, r *http.Request) {
	if !a.runnerRequest(w, r, "wait") {
		return
	}
	name := r.PathValue("name")
	wait, err := queryBool(r, "wait")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	body, err := readBody(w, r, MaxRunBody)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var in runBody
	if len(bytes.TrimSpace(body)) > 0 {
		if err := decodeJSON(body, &in, true); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	alert, err := alertObject(in.Alert)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	wait = wait || in.Wait
	caller, _ := IdentityFrom(r.Context())
	ex, err := a.runner.Submit(r.Context(), runner.RunRequest{
		Script: name, Trigger: runner.TriggerManual, User: caller.Name, Alert: alert,
	})
	if err != nil {
		a.writeError(w, r, scriptError(err, name))
		return
	}
	if !wait {
		writeJSON(w, http.StatusAccepted, ex)
		return
	}
	if runner.Final(ex.Status) {
		writeJSON(w, http.StatusOK, ex)
		return
	}
	a.clearWriteDeadline(w)
	ctx, cancel := a.untilStop(r.Context())
	defer cancel()
	final, err := a.runner.Wait(ctx, ex.ID)
	switch {
	case err == nil && final != nil && runner.Final(final.Status):
		writeJSON(w, http.StatusOK, final)
	case r.Context().Err() != nil:
		// The caller went away; the run goes on.
		a.writeError(w, r, r.Context().Err())
	case ctx.Err() != nil:
		// The API is stopping: answer with the run as it stands, which
		// goes on, rather than an error that hides its id.
		if cur, gerr := a.runner.Get(context.WithoutCancel(r.Context()), ex.ID); gerr == nil {
			ex = cur
		}
		status := http.StatusAccepted
		if runner.Final(ex.Status) {
			status = http.StatusOK
		}
		writeJSON(w, status, ex)
	case err != nil:
		a.writeError(w, r, executionError(err, ex.ID, final))
	default:
		a.writeError(w, r, fmt.Errorf("wait %s: the runner answered without a final execution", ex.ID))
	}
}

// alertObject checks that a given alert is a JSON object and compacts it;
// null and absent are no alert.
func alertObject(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if raw[0] != '{' {
		return nil, errBadRequest("alert", "must be a JSON object, got %s", jsonTypeName(raw))
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, errBadRequest("alert", "malformed JSON: %v", err)
	}
	return buf.Bytes(), nil
}

func jsonTypeName(raw json.RawMessage) string {
	switch raw[0] {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func (a *API) handleListExecutions(w http.ResponseWriter, r *http.Request) {
	if !a.runnerRequest(w, r, "script", "status", "limit") {
		return
	}
	q := r.URL.Query()
	f := runner.ExecFilter{Script: q.Get("script"), Status: q.Get("status"), Limit: DefaultExecutionLimit}
	if f.Status != "" && !knownStatus(f.Status) {
		a.writeError(w, r, errBadRequest("status", "must be one of %s, got %q", strings.Join(ExecutionStatuses, ", "), f.Status))
		return
	}
	var err error
	if f.Limit, err = queryLimit(r, DefaultExecutionLimit, MaxExecutionLimit); err != nil {
		a.writeError(w, r, err)
		return
	}
	items, err := a.runner.List(r.Context(), f)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if len(items) > f.Limit {
		items = items[:f.Limit]
	}
	if items == nil {
		items = []*runner.Execution{}
	}
	writeJSON(w, http.StatusOK, executionList{Items: items})
}

func knownStatus(s string) bool { return slices.Contains(ExecutionStatuses, s) }

func (a *API) handleGetExecution(w http.ResponseWriter, r *http.Request) {
	if !a.runnerRequest(w, r) {
		return
	}
	id := r.PathValue("id")
	ex, err := a.runner.Get(r.Context(), id)
	if err != nil {
		a.writeError(w, r, executionError(err, id, nil))
		return
	}
	writeJSON(w, http.StatusOK, ex)
}

func (a *API) handleCancelExecution(w http.ResponseWriter, r *http.Request) {
	if !a.runnerRequest(w, r) {
		return
	}
	id := r.PathValue("id")
	caller, _ := IdentityFrom(r.Context())
	ex, err := a.runner.Cancel(r.Context(), id, caller.Name)
	if err != nil {
		a.writeError(w, r, executionError(err, id, ex))
		return
	}
	writeJSON(w, http.StatusOK, ex)
}

func (a *API) handleExecutionLogs(w http.ResponseWriter, r *http.Request) {
	if !a.runnerRequest(w, r, "follow") {
		return
	}
	follow, err := queryBool(r, "follow")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	id := r.PathValue("id")
	ex, err := a.runner.Get(r.Context(), id)
	if err != nil {
		a.writeError(w, r, executionError(err, id, nil))
		return
	}
	if !follow {
		writeJSON(w, http.StatusOK, executionLogs{
			Stdout: ex.Stdout, Stderr: ex.Stderr,
			StdoutTruncated: ex.StdoutTruncated, StderrTruncated: ex.StderrTruncated,
			Status: ex.Status,
		})
		return
	}
	a.followLogs(w, r, id, ex)
}

// followLogs streams an execution's output as Server-Sent Events: `stdout`
// and `stderr` events carry the output that is new since the last event,
// and a last `end` event the final status. It reads the execution every
// logPoll until it is final, the caller goes away or the API stops.
func (a *API) followLogs(w http.ResponseWriter, r *http.Request, id string, ex *runner.Execution) {
	rc, ok := a.beginEventStream(w)
	if !ok {
		return
	}
	ctx, cancel := a.untilStop(r.Context())
	defer cancel()
	poll := time.NewTicker(a.logPoll)
	defer poll.Stop()
	keep := time.NewTicker(a.keepAlive)
	defer keep.Stop()

	var (
		buf              bytes.Buffer
		sentOut, sentErr int
	)
	for {
		final := runner.Final(ex.Status)
		buf.Reset()
		sentOut = writeLogEvents(&buf, "stdout", ex.Stdout, sentOut, final)
		sentErr = writeLogEvents(&buf, "stderr", ex.Stderr, sentErr, final)
		if final {
			fmt.Fprintf(&buf, "event: end\ndata: %s\n\n", cellSafe(ex.Status))
		}
		if buf.Len() > 0 {
			if _, err := w.Write(buf.Bytes()); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
		if final {
			return
		}
		for polled := false; !polled; {
			select {
			case <-ctx.Done():
				return
			case <-keep.C:
				if _, err := w.Write([]byte(": keepalive\n\n")); err != nil {
					return
				}
				if err := rc.Flush(); err != nil {
					return
				}
			case <-poll.C:
				polled = true
			}
		}
		next, err := a.runner.Get(ctx, id)
		if err != nil {
			if ctx.Err() == nil {
				a.log.Error("follow execution logs", "execution", id, "err", err)
			}
			return
		}
		ex = next
	}
}

// writeLogEvents frames the part of out after sent as events named event,
// and returns how much of out is sent. Each event's data is one piece of
// the output: the data lines split it at "\n" (SSE cannot carry a carriage
// return, so "\r\n" and a lone "\r" arrive as "\n"). A "\r" at the end is
// held back until the next read, or the end, in case "\n" follows it.
func writeLogEvents(buf *bytes.Buffer, event, out string, sent int, final bool) int {
	if len(out) <= sent {
		return sent
	}
	end := len(out)
	if !final && out[end-1] == '\r' {
		end--
	}
	chunk := out[sent:end]
	if chunk == "" {
		return sent
	}
	chunk = strings.ReplaceAll(chunk, "\r\n", "\n")
	chunk = strings.ReplaceAll(chunk, "\r", "\n")
	for chunk != "" {
		n := len(chunk)
		if n > maxLogEvent {
			n = maxLogEvent
			for n > maxLogEvent-utf8.UTFMax && !utf8.RuneStart(chunk[n]) {
				n--
			}
		}
		fmt.Fprintf(buf, "event: %s\n", event)
		for line := range strings.SplitSeq(chunk[:n], "\n") {
			buf.WriteString("data: ")
			buf.WriteString(line)
			buf.WriteByte('\n')
		}
		buf.WriteByte('\n')
		chunk = chunk[n:]
	}
	return end
}

// cellSafe keeps a value on one SSE line.
func cellSafe(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}
