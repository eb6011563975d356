package schedule

import (
	"encoding/json"
	"time"
)

// Names used in the events and alerts of schedules.
const (
	// ObjType is the obj_type of a schedule's events.
	ObjType = "schedule"
	// Source is the CloudEvents source of a schedule's events.
	Source = "/vigil/schedule"
	// RunEventID is the event id of the one event in the alert a
	// scheduled ControlScript gets.
	RunEventID = "SCHEDULER_RUN"
	// DetailsKey is the event_details key of the scheduler's events,
	// Avi's SchedulerActionDetails.
	DetailsKey = "scheduler_action_info"
)

// ActionInfo is the scheduler_action_info of the scheduler's events: Avi's
// SchedulerActionDetails (scheduler_uuid, execution_datestamp, status,
// control_script_output) and vigil's own fields.
type ActionInfo struct {
	SchedulerUUID      string `json:"scheduler_uuid,omitempty"`
	SchedulerName      string `json:"scheduler_name"`
	ExecutionDatestamp string `json:"execution_datestamp"`
	// Status is running in the alert of a ControlScript, then succeeded or
	// failed in SCHEDULER_ACTION_SUCCESS / _FAILURE.
	Status string `json:"status"`
	// Slot is the slot's time (RFC 3339, nanoseconds).
	Slot string `json:"slot"`
	// Action is controlscript or publish_event.
	Action        string `json:"action"`
	ControlScript string `json:"controlscript,omitempty"`
	ExecutionID   string `json:"execution_id,omitempty"`
	EventID       string `json:"event_id,omitempty"`
	Error         string `json:"error,omitempty"`
	// Missed is true when the slot runs late, under the missed policy.
	Missed   bool   `json:"missed,omitempty"`
	Instance string `json:"instance,omitempty"`
}

// Alert is the alert JSON (sys.argv[1]) of a scheduled ControlScript,
// shaped like the alerts of Avi's ControlScripts: one event, SCHEDULER_RUN
// on the schedule, whose event_details hold scheduler_action_info.
type Alert struct {
	Name          string       `json:"name"`
	Level         string       `json:"level"`
	Reason        string       `json:"reason"`
	ObjName       string       `json:"obj_name"`
	ObjUUID       string       `json:"obj_uuid"`
	Threshold     int          `json:"threshold"`
	ThrottleCount int          `json:"throttle_count"`
	Events        []AlertEvent `json:"events"`
}

// AlertEvent is the one event of an Alert.
type AlertEvent struct {
	EventID         string                `json:"event_id"`
	ObjUUID         string                `json:"obj_uuid"`
	ObjName         string                `json:"obj_name"`
	ReportTimestamp int64                 `json:"report_timestamp"`
	EventDetails    map[string]ActionInfo `json:"event_details"`
}

// NewAlert returns the alert of the slot of a schedule that runs script.
func NewAlert(name, uuid, script string, slot time.Time, missed bool) *Alert {
	info := ActionInfo{
		SchedulerUUID: uuid, SchedulerName: name, ExecutionDatestamp: slot.UTC().Format(time.RFC3339),
		Status: "running", Slot: slot.UTC().Format(time.RFC3339Nano), Action: ActionControlScript,
		ControlScript: script, ExecutionID: ExecutionID(name, slot), Missed: missed,
	}
	return &Alert{
		Name: name + "-" + slot.UTC().Format("20060102T150405Z"), Level: "ALERT_LOW", Reason: "scheduled",
		ObjName: name, ObjUUID: uuid, Threshold: 1,
		Events: []AlertEvent{{
			EventID: RunEventID, ObjUUID: uuid, ObjName: name, ReportTimestamp: slot.Unix(),
			EventDetails: map[string]ActionInfo{DetailsKey: info},
		}},
	}
}

func alertJSON(e *entry, slot time.Time, missed bool) (json.RawMessage, error) {
	return json.Marshal(NewAlert(e.name, e.uuid, e.sched.Spec.ControlScript, slot, missed))
}

// resultDetails are the event_details of a run's result event.
func resultDetails(e *entry, r *Run) map[string]ActionInfo {
	return map[string]ActionInfo{DetailsKey: {
		SchedulerUUID: e.uuid, SchedulerName: e.name, ExecutionDatestamp: r.Time.UTC().Format(time.RFC3339),
		Status: r.Status, Slot: r.Slot.UTC().Format(time.RFC3339Nano), Action: r.Action,
		ControlScript: e.sched.Spec.ControlScript, ExecutionID: r.ExecutionID, EventID: r.EventID,
		Error: r.Error, Missed: r.Missed, Instance: r.Instance,
	}}
}

// slotExtensions are the CloudEvents extensions of a slot's events.
func slotExtensions(name string, slot time.Time, missed bool) map[string]any {
	x := map[string]any{"schedule": name, "scheduleslot": slot.UTC().Format(time.RFC3339Nano)}
	if missed {
		x["schedulemissed"] = true
	}
	return x
}
