package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Alert states.
const (
	AlertOn        = "ON"
	AlertThrottled = "THROTTLED"
	AlertResolved  = "RESOLVED"
	AlertDismissed = "DISMISSED"
)

// AlertStates lists the alert states, in the order the API documents them.
var AlertStates = []string{AlertOn, AlertThrottled, AlertResolved, AlertDismissed}

// Alert is the alert of one (AlertConfig, group key), as the API answers it
// (the JSON of the rules engine's alert).
type Alert struct {
	ID      string `json:"id"`
	Config  string `json:"config"`
	Key     string `json:"key"`
	State   string `json:"state"`
	Level   string `json:"level"`
	ObjType string `json:"obj_type"`
	ObjName string `json:"obj_name"`
	ObjUUID string `json:"obj_uuid,omitempty"`
	// Raised is when the alert was raised, Acted when its actions last ran.
	Raised time.Time `json:"raised"`
	Acted  time.Time `json:"acted"`
	// ThrottleCount counts the matches since the actions last ran.
	ThrottleCount int `json:"throttle_count"`
	// Events are the events that caused it; the server keeps the newest
	// 100.
	Events  []EventRecord `json:"events"`
	Summary string        `json:"summary"`
	// Actions are the outcomes of its actions; [Client.GetAlert] fills
	// them in, a list may leave them out.
	Actions []ActionOutcome `json:"actions,omitempty"`
	// ActionScriptOutput is the output of its ControlScript's last run.
	ActionScriptOutput string `json:"action_script_output,omitempty"`
}

// EventRecord is the Avi EventLog record, the data of an event.
type EventRecord struct {
	EventID          string                     `json:"event_id"`
	Module           string                     `json:"module"`
	ObjType          string                     `json:"obj_type"`
	ObjName          string                     `json:"obj_name"`
	ObjUUID          string                     `json:"obj_uuid,omitempty"`
	Tenant           string                     `json:"tenant"`
	ReportTimestamp  int64                      `json:"report_timestamp"` // epoch seconds
	EventDetails     map[string]json.RawMessage `json:"event_details,omitempty"`
	DetailsSummary   string                     `json:"details_summary,omitempty"`
	EventDescription string                     `json:"event_description,omitempty"`
}

// Action outcome statuses.
const (
	OutcomeQueued    = "queued"
	OutcomeDelivered = "delivered"
	OutcomeRetrying  = "retrying"
	OutcomeDead      = "dead"
	OutcomeFailed    = "failed"
)

// ActionOutcome is where one action of an alert stands.
type ActionOutcome struct {
	// Key is the action's idempotency key; Kind and Target say which
	// action ("webhook" and "webhooks[0]", say).
	Key    string `json:"key"`
	Kind   string `json:"kind"`
	Target string `json:"target"`
	// Resolve is set for an action run on the alert's resolve.
	Resolve bool `json:"resolve,omitempty"`
	// Status is queued, delivered, retrying, dead (in the dead-letter
	// stream) or failed (a ControlScript that ran and failed).
	Status string    `json:"status"`
	Tries  int       `json:"tries"`
	Error  string    `json:"error,omitempty"`
	At     time.Time `json:"at"`
	// Execution is the ControlScript's execution id, Output its output.
	Execution string `json:"execution,omitempty"`
	Output    string `json:"output,omitempty"`
}

// TestResult is what one AlertConfig would do with an event.
type TestResult struct {
	Config string `json:"config"`
	// Matched: the event raises or resolves the config's alert; Reason
	// says why not otherwise.
	Matched bool   `json:"matched"`
	Reason  string `json:"reason,omitempty"`
	Key     string `json:"key,omitempty"`
	// Outcome is what the event would do: raise, act, throttle, resolve,
	// "silenced by NAME", collect or "dropped (...)".
	Outcome string `json:"outcome,omitempty"`
	// Alert is the alert as it would be after the event.
	Alert *Alert `json:"alert,omitempty"`
	// Actions are the actions that would run.
	Actions []ActionOutcome `json:"actions,omitempty"`
}

// DeadLetter is an action request that could not be delivered.
type DeadLetter struct {
	// Seq is its sequence in the dead-letter stream, what replay takes.
	Seq     uint64        `json:"seq"`
	Request ActionRequest `json:"request"`
	Error   string        `json:"error"`
	// Status is the receiver's HTTP status, when there was one.
	Status int       `json:"status,omitempty"`
	Tries  int       `json:"tries"`
	At     time.Time `json:"at"`
}

// ActionRequest is one action of one alert decision on its way to
// delivery.
type ActionRequest struct {
	// Key is the idempotency key, the same on every retry and replay.
	Key string `json:"key"`
	// Kind is an action kind; Index picks the webhook or syslog target.
	Kind  string `json:"kind"`
	Index int    `json:"index"`
	// Group names the ActionGroup, Config the AlertConfig and GroupKey the
	// alert's group.
	Group    string `json:"group"`
	Config   string `json:"config"`
	GroupKey string `json:"group_key"`
	ObjType  string `json:"obj_type,omitempty"`
	// Resolve is set for an action run on the alert's resolve.
	Resolve bool      `json:"resolve,omitempty"`
	Created time.Time `json:"created"`
	// Notice is the alert as the action sees it.
	Notice Notice `json:"notice"`
	// Replays counts the replays from the dead-letter stream.
	Replays int `json:"replays,omitempty"`
	// Hops counts the publish_event actions that led to the alert's event.
	Hops int `json:"hops,omitempty"`
}

// Target names the action inside its ActionGroup, as [ActionOutcome.Target]
// does: "webhooks[1]", "syslog[0]", or the kind for the others.
func (q *ActionRequest) Target() string {
	switch q.Kind {
	case "webhook":
		return fmt.Sprintf("webhooks[%d]", q.Index)
	case "syslog":
		return fmt.Sprintf("syslog[%d]", q.Index)
	default:
		return q.Kind
	}
}

// Notice is what action templates see, and the default webhook body.
type Notice struct {
	// ID is the alert's id; Key the action's idempotency key.
	ID      string    `json:"id"`
	Key     string    `json:"key"`
	Config  string    `json:"config"`
	State   string    `json:"state"`
	Summary string    `json:"summary"`
	Time    time.Time `json:"time"`
	// Alert is the alert in Avi's shape, as a ControlScript gets it.
	Alert json.RawMessage `json:"alert"`
}

// AlertFilter selects alerts: one AlertConfig and one state (any case)
// when they are set, and at most Limit (0: the server's default of 100).
type AlertFilter struct {
	Config string
	State  string
	Limit  int
}

// ListAlerts lists the alerts matching f, newest first.
func (c *Client) ListAlerts(ctx context.Context, f AlertFilter) ([]Alert, error) {
	q := url.Values{}
	if f.Config != "" {
		q.Set("config", f.Config)
	}
	if f.State != "" {
		q.Set("state", f.State)
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var out struct {
		Items []Alert `json:"items"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/alerts", q, nil, &out)
	return out.Items, err
}

func alertPath(id string) string { return "/api/v1/alerts/" + url.PathEscape(id) }

// GetAlert returns one alert, with its events and the outcome of each
// action. An unknown (or expired) alert is an *APIError with code
// "not_found".
func (c *Client) GetAlert(ctx context.Context, id string) (*Alert, error) {
	var out Alert
	if err := c.do(ctx, http.MethodGet, alertPath(id), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DismissAlert dismisses an alert and returns it: its actions stop, and
// the next match raises a new one.
func (c *Client) DismissAlert(ctx context.Context, id string) (*Alert, error) {
	var out Alert
	if err := c.do(ctx, http.MethodPost, alertPath(id)+"/dismiss", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// TestAlerts asks what each AlertConfig would do with event, a CloudEvents
// 1.0 structured event or a bare record (what [Client.PublishEvent]
// takes), from the current state; nothing is stored and no action runs.
func (c *Client) TestAlerts(ctx context.Context, event json.RawMessage) ([]TestResult, error) {
	var out struct {
		Results []TestResult `json:"results"`
	}
	err := c.do(ctx, http.MethodPost, "/api/v1/alerts/test", nil, event, &out)
	return out.Results, err
}

// DeadLetterPage is one page of dead letters, oldest first. NextCursor is
// empty at the end.
type DeadLetterPage struct {
	Items      []DeadLetter `json:"items"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

// ListDeadLetters lists the actions that could not be delivered, oldest
// first, at most limit (0: the server's default of 100); cursor continues
// from an earlier page's NextCursor.
func (c *Client) ListDeadLetters(ctx context.Context, cursor string, limit int) (DeadLetterPage, error) {
	q := url.Values{}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out DeadLetterPage
	err := c.do(ctx, http.MethodGet, "/api/v1/deadletters", q, nil, &out)
	return out, err
}

// ReplayDeadLetter queues the dead letter seq's action again, with the same
// idempotency key, and returns the dead letter as it was. One that was
// replayed already or is past its retention is an *APIError with code
// "not_found".
func (c *Client) ReplayDeadLetter(ctx context.Context, seq uint64) (*DeadLetter, error) {
	var out DeadLetter
	path := "/api/v1/deadletters/" + strconv.FormatUint(seq, 10) + "/replay"
	if err := c.do(ctx, http.MethodPost, path, nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
