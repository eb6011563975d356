package actions

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Action kinds.
const (
	ActionControlScript = "controlscript"
	ActionWebhook       = "webhook"
	ActionSlack         = "slack"
	ActionSyslog        = "syslog"
	ActionEmail         = "email"
	ActionPublishEvent  = "publish_event"
	ActionAutoscale     = "autoscale"
)

// ActionRequest is one action of one alert decision on its way to
// delivery: written to the outbox with the state that caused it, then
// queued on the actions stream, retried, and dead-lettered when it cannot
// be delivered. The action itself is read from the ActionGroup when it is
// delivered, so a fixed ActionGroup serves a replay.
type ActionRequest struct {
	// Key is the idempotency key: the same on every retry and replay, and
	// what the receiver sees (a webhook's webhook-id).
	Key string `json:"key"`
	// Kind is an action kind; Index picks the webhook or syslog target.
	Kind  string `json:"kind"`
	Index int    `json:"index"`
	// Group names the ActionGroup, Config the AlertConfig and GroupKey the
	// alert's group.
	Group    string `json:"group"`
	Config   string `json:"config"`
	GroupKey string `json:"group_key"`
	// ObjType is the alert's object type (Avi's alert shape has none).
	ObjType string `json:"obj_type,omitempty"`
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

// Target names the action inside its group, e.g. "webhooks[1]".
func (q *ActionRequest) Target() string {
	switch q.Kind {
	case ActionWebhook:
		return fmt.Sprintf("webhooks[%d]", q.Index)
	case ActionSyslog:
		return fmt.Sprintf("syslog[%d]", q.Index)
	default:
		return q.Kind
	}
}

// keySpace is the namespace of action keys (UUIDv5).
var keySpace = uuid.MustParse("4f1c7b9e-2d0a-5c43-9e8b-76a1d3c2b5f0")

// ActionKey is the idempotency key of one action of one decision: it
// derives from what caused the decision, so a decision made again after a
// crash gives the same key.
func ActionKey(config, groupKey, cause, kind string, index int, resolve bool) string {
	s := strings.Join([]string{config, groupKey, cause, kind, fmt.Sprint(index), fmt.Sprint(resolve)}, "\x00")
	return "act-" + uuid.NewSHA1(keySpace, []byte(s)).String()
}

// aviLevel maps a level to Avi's.
func aviLevel(level string) string {
	switch level {
	case LevelHigh:
		return "ALERT_HIGH"
	case LevelMedium:
		return "ALERT_MEDIUM"
	default:
		return "ALERT_LOW"
	}
}

var levelRank = map[string]int{"": 0, LevelLow: 0, LevelMedium: 1, LevelHigh: 2}

// AviShape returns the alert as a ControlScript gets it in sys.argv[1].
func AviShape(a *Alert, threshold int, resolve bool) AviAlert {
	obj := a.ObjUUID
	if obj == "" {
		obj = a.ObjName
	}
	ts := a.Raised
	out := AviAlert{
		Name:  fmt.Sprintf("%s-%s-%.6f-%d-%d", a.Config, obj, float64(ts.UnixMicro())/1e6, ts.Unix(), len(a.Events)),
		Level: aviLevel(a.Level), Reason: "threshold_exceeded", ObjName: a.ObjName, ObjUUID: a.ObjUUID,
		Threshold: threshold, ThrottleCount: a.ThrottleCount, Events: make([]AviAlertEvent, 0, len(a.Events)),
	}
	if resolve {
		out.Reason = "resolved"
	}
	for _, e := range a.Events {
		out.Events = append(out.Events, AviAlertEvent{
			EventID: e.EventID, ObjUUID: e.ObjUUID, ObjName: e.ObjName,
			ReportTimestamp: e.ReportTimestamp, EventDetails: e.EventDetails,
		})
	}
	return out
}

// PlanActions returns the action requests of a decision for an
// ActionGroup (nil when there is none of that name), and their outcomes as
// queued. A group whose level is above the alert's, or a resolve without
// on_resolve, plans nothing.
func PlanActions(r *Rule, d *Decision, groupName string, g *ActionGroupSpec, now time.Time) ([]Outbound, []ActionOutcome, error) {
	if groupName == "" {
		return nil, nil, nil
	}
	if g == nil {
		return nil, []ActionOutcome{{
			Key: ActionKey(r.Name, d.Key, d.Cause, "", 0, d.Resolved), Kind: "action_group", Target: groupName,
			Resolve: d.Resolved, Status: OutcomeFailed, At: now,
			Error: fmt.Sprintf("ActionGroup %q does not exist", groupName),
		}}, nil
	}
	if d.Resolved && !g.OnResolve {
		return nil, nil, nil
	}
	if levelRank[d.Alert.Level] < levelRank[g.Level] {
		return nil, nil, nil
	}
	type action struct {
		kind  string
		index int
	}
	var list []action
	if g.ControlScript != "" {
		list = append(list, action{ActionControlScript, 0})
	}
	for i := range g.Webhooks {
		list = append(list, action{ActionWebhook, i})
	}
	if g.Slack != nil {
		list = append(list, action{ActionSlack, 0})
	}
	for i := range g.Syslog {
		list = append(list, action{ActionSyslog, i})
	}
	if g.Email != nil {
		list = append(list, action{ActionEmail, 0})
	}
	var refused []ActionOutcome
	if g.PublishEvent != nil {
		if d.Hops >= MaxHops {
			// A loop of rules that publish what raises them ends here.
			refused = append(refused, ActionOutcome{
				Key: ActionKey(r.Name, d.Key, d.Cause, ActionPublishEvent, 0, d.Resolved), Kind: ActionPublishEvent,
				Target: ActionPublishEvent, Resolve: d.Resolved, Status: OutcomeFailed, At: now,
				Error: fmt.Sprintf("not published: the event that raised the alert came through %d publish_event actions, at most %d", d.Hops, MaxHops),
			})
		} else {
			list = append(list, action{ActionPublishEvent, 0})
		}
	}
	if g.Autoscale {
		list = append(list, action{ActionAutoscale, 0})
	}
	threshold := DefaultThreshold
	if r.Spec.Threshold > 0 {
		threshold = r.Spec.Threshold
	}
	state := d.Alert.State
	if d.Resolved {
		state = StateResolved
	} else if state == StateThrottled {
		state = StateOn
	}
	avi := AviShape(d.Alert, threshold, d.Resolved)
	boundAlert(&avi)
	out := make([]Outbound, 0, len(list))
	outcomes := make([]ActionOutcome, 0, len(list))
	for _, a := range list {
		q := ActionRequest{
			Key:  ActionKey(r.Name, d.Key, d.Cause, a.kind, a.index, d.Resolved),
			Kind: a.kind, Index: a.index, Group: groupName, Config: r.Name, GroupKey: d.Key,
			ObjType: d.Alert.ObjType, Resolve: d.Resolved, Created: now, Hops: d.Hops,
		}
		q.Notice = Notice{
			ID: d.Alert.ID, Key: q.Key, Config: r.Name, State: state, Summary: d.Alert.Summary,
			Time: now, Alert: avi,
		}
		b, err := json.Marshal(&q)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, Outbound{Key: q.Key, Data: b})
		outcomes = append(outcomes, ActionOutcome{
			Key: q.Key, Kind: a.kind, Target: q.Target(), Resolve: d.Resolved, Status: OutcomeQueued, At: now,
		})
	}
	return out, append(outcomes, refused...), nil
}

// MaxNoticeEvents bounds the bytes of the events an action request carries
// (the alert's newest events that fit, at least one): a decision's
// requests travel in its group's state, one write.
const MaxNoticeEvents = 24 << 10

// boundAlert drops the oldest events of a until the rest fit in
// MaxNoticeEvents, keeping at least the newest.
func boundAlert(a *AviAlert) {
	size, keep := 0, 0
	for i := len(a.Events) - 1; i >= 0; i-- {
		b, _ := json.Marshal(&a.Events[i])
		if keep > 0 && size+len(b) > MaxNoticeEvents {
			break
		}
		size += len(b)
		keep++
	}
	a.Events = a.Events[len(a.Events)-keep:]
}
