package controller

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/vigilhq/vigil/actions"
	"github.com/vigilhq/vigil/events"
)

// Alerts is what the API needs from the rules engine.
type Alerts interface {
	// Alerts returns the alerts matching f, newest first.
	Alerts(ctx context.Context, f actions.AlertFilter) ([]actions.Alert, error)
	// Alert returns one alert; actions.ErrNoAlert when there is none.
	Alert(ctx context.Context, id string) (*actions.Alert, error)
	// Dismiss dismisses an alert.
	Dismiss(ctx context.Context, id string) (*actions.Alert, error)
	// Test tells what each AlertConfig would do with an event.
	Test(ctx context.Context, ev *events.Event) ([]actions.TestResult, error)
	// DeadLetters lists dead letters from a sequence on.
	DeadLetters(ctx context.Context, from uint64, limit int) ([]actions.DeadLetter, uint64, error)
	// Replay queues a dead letter again; actions.ErrNoDeadLetter when
	// there is none.
	Replay(ctx context.Context, seq uint64) (*actions.DeadLetter, error)
}

// Bounds of the alert and dead-letter lists.
const (
	DefaultAlertLimit = 100
	MaxAlertLimit     = 10000
)

// AlertStates lists the alert states.
var AlertStates = []string{actions.StateOn, actions.StateThrottled, actions.StateResolved, actions.StateDismissed}

var errNoRules = errUnavailable("the rules engine is not enabled")

type alertList struct {
	Items []actions.Alert `json:"items"`
}

type testAnswer struct {
	Results []actions.TestResult `json:"results"`
}

type deadLetterList struct {
	Items []actions.DeadLetter `json:"items"`
	// NextCursor continues the list; absent at the end.
	NextCursor string `json:"next_cursor,omitempty"`
}

func (a *API) alertsRequest(w http.ResponseWriter, r *http.Request, names ...string) bool {
	if a.alerts == nil {
		a.writeError(w, r, errNoRules)
		return false
	}
	if err := onlyQuery(r, names...); err != nil {
		a.writeError(w, r, err)
		return false
	}
	return true
}

func (a *API) handleListAlerts(w http.ResponseWriter, r *http.Request) {
	if !a.alertsRequest(w, r, "config", "state", "limit") {
		return
	}
	q := r.URL.Query()
	f := actions.AlertFilter{Config: q.Get("config"), State: strings.ToUpper(q.Get("state"))}
	if f.State != "" && !slices.Contains(AlertStates, f.State) {
		a.writeError(w, r, errBadRequest("state", "must be one of %s, got %q", strings.Join(AlertStates, ", "), q.Get("state")))
		return
	}
	var err error
	if f.Limit, err = queryLimit(r, DefaultAlertLimit, MaxAlertLimit); err != nil {
		a.writeError(w, r, err)
		return
	}
	items, err := a.alerts.Alerts(r.Context(), f)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if items == nil {
		items = []actions.Alert{}
	}
	writeJSON(w, http.StatusOK, alertList{Items: items})
}

func alertError(err error, id string) error {
	if errors.Is(err, actions.ErrNoAlert) {
		return errNotFound("Alert/"+id, "Alert/"+id+": not found (it may have expired)")
	}
	return err
}

func (a *API) handleGetAlert(w http.ResponseWriter, r *http.Request) {
	if !a.alertsRequest(w, r) {
		return
	}
	id := r.PathValue("id")
	al, err := a.alerts.Alert(r.Context(), id)
	if err != nil {
		a.writeError(w, r, alertError(err, id))
		return
	}
	writeJSON(w, http.StatusOK, al)
}

func (a *API) handleDismissAlert(w http.ResponseWriter, r *http.Request) {
	if !a.alertsRequest(w, r) {
		return
	}
	id := r.PathValue("id")
	al, err := a.alerts.Dismiss(r.Context(), id)
	if err != nil {
		a.writeError(w, r, alertError(err, id))
		return
	}
	caller, _ := IdentityFrom(r.Context())
	a.log.Info("alert dismissed", "alert", id, "config", al.Config, "user", caller.Name)
	writeJSON(w, http.StatusOK, al)
}

func (a *API) handleTestAlerts(w http.ResponseWriter, r *http.Request) {
	if !a.alertsRequest(w, r) {
		return
	}
	ev, _, err := a.readEvent(w, r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	res, err := a.alerts.Test(r.Context(), ev)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if res == nil {
		res = []actions.TestResult{}
	}
	writeJSON(w, http.StatusOK, testAnswer{Results: res})
}

func (a *API) handleListDeadLetters(w http.ResponseWriter, r *http.Request) {
	if !a.alertsRequest(w, r, "limit", "cursor") {
		return
	}
	limit, err := queryLimit(r, DefaultAlertLimit, MaxAlertLimit)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var from uint64
	if s := r.URL.Query().Get("cursor"); s != "" {
		if from, err = strconv.ParseUint(s, 10, 64); err != nil {
			a.writeError(w, r, errBadRequest("cursor", "must be a sequence number, got %q", s))
			return
		}
	}
	items, next, err := a.alerts.DeadLetters(r.Context(), from, limit)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if items == nil {
		items = []actions.DeadLetter{}
	}
	ans := deadLetterList{Items: items}
	if next != 0 {
		ans.NextCursor = strconv.FormatUint(next, 10)
	}
	writeJSON(w, http.StatusOK, ans)
}

func (a *API) handleReplayDeadLetter(w http.ResponseWriter, r *http.Request) {
	if !a.alertsRequest(w, r) {
		return
	}
	s := r.PathValue("seq")
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil || seq == 0 {
		a.writeError(w, r, errBadRequest("seq", "must be a dead letter's sequence number, got %q", s))
		return
	}
	dl, err := a.alerts.Replay(r.Context(), seq)
	if errors.Is(err, actions.ErrNoDeadLetter) {
		a.writeError(w, r, errNotFound("DeadLetter/"+s, "DeadLetter/"+s+": not found (replayed already, or past its retention)"))
		return
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	caller, _ := IdentityFrom(r.Context())
	a.log.Info("dead letter replayed", "seq", seq, "key", dl.Request.Key, "user", caller.Name)
	writeJSON(w, http.StatusOK, dl)
}
