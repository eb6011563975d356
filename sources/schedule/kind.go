package schedule

import (
	"encoding/json"
	"errors"
	"strings"
	"time"
	// Named zones must mean the same on every instance, whatever the host
	// has installed.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/events"
)

// KindSchedule is the kind of a Schedule object.
const KindSchedule = "Schedule"

// The missed-run policies.
const (
	// MissedSkip runs none of the slots missed while no instance ran.
	MissedSkip = "skip"
	// MissedOnce runs the latest missed slot, once.
	MissedOnce = "once"
	// MissedCatchUp runs the oldest missed slots, up to catch_up_limit,
	// oldest first.
	MissedCatchUp = "catch_up"
)

// MaxCatchUpLimit bounds catch_up_limit.
const MaxCatchUpLimit = 1000

// The actions, as named in Status, Run and the result events.
const (
	ActionControlScript = "controlscript"
	ActionPublishEvent  = "publish_event"
)

// Spec is the spec of a Schedule: when it fires, what it does, and what
// happens to the slots that pass while no vigil instance runs.
type Spec struct {
	// Cron is the schedule: five fields (minute hour day-of-month month
	// day-of-week), six with a leading seconds field, or a descriptor
	// (@yearly, @monthly, @weekly, @daily, @hourly, @every 90s). The
	// slots of "@every D" are the multiples of D since the Unix epoch, so
	// every instance agrees on them.
	Cron string `json:"cron"`
	// Timezone is the IANA zone the fields are read in; default UTC.
	Timezone string `json:"timezone,omitempty"`
	// ControlScript names the ControlScript to run at each slot, with an
	// alert JSON shaped like the one Avi's scheduler gives its scripts.
	// Exactly one of controlscript and publish_event is set.
	ControlScript string `json:"controlscript,omitempty"`
	// PublishEvent is the event to publish at each slot.
	PublishEvent *PublishEvent `json:"publish_event,omitempty"`
	// Missed says what to do with the slots that passed while no
	// instance ran: skip (the default), once (run the latest once) or
	// catch_up (run the oldest ones, up to catch_up_limit, oldest first).
	Missed string `json:"missed,omitempty"`
	// CatchUpLimit bounds the slots that catch_up runs (1 to 1000);
	// required with catch_up, refused otherwise.
	CatchUpLimit *int `json:"catch_up_limit,omitempty"`
	// Enabled turns the schedule on and off; default true.
	Enabled *bool `json:"enabled,omitempty"`
	// Description is free text.
	Description string `json:"description,omitempty"`
}

// PublishEvent is the event a schedule publishes.
type PublishEvent struct {
	// EventID is the event's id (A-Z, 0-9 and _), e.g. NIGHTLY_REPORT.
	EventID string `json:"event_id"`
	// ObjType and ObjName name the object; default "schedule" and the
	// schedule's name.
	ObjType string `json:"obj_type,omitempty"`
	ObjName string `json:"obj_name,omitempty"`
	// Details is the event's event_details, a JSON object.
	Details map[string]json.RawMessage `json:"details,omitempty"`
}

// Schedule is a checked Schedule spec, ready to compute slots.
type Schedule struct {
	// Spec is the decoded spec, with its defaults filled in.
	Spec Spec
	// Location is the zone of the cron fields.
	Location *time.Location

	cron  cron.Schedule
	every time.Duration // > 0 for "@every": slots on a grid from the epoch
}

// parser reads five fields, or six with seconds, and descriptors.
var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// reference is the time from which a cron expression must match at least
// once (robfig/cron looks five years ahead), so that "0 0 30 2 *" is refused.
var reference = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Compile checks a Schedule spec and prepares it. Errors are
// *config.FieldError naming the field.
func Compile(spec json.RawMessage) (*Schedule, error) {
	var s Spec
	if err := config.DecodeSpec(spec, &s); err != nil {
		return nil, err
	}
	sc := &Schedule{Spec: s}

	expr := strings.TrimSpace(s.Cron)
	if expr == "" {
		return nil, config.Errorf("spec.cron", "is required, e.g. \"*/5 * * * *\" or \"@every 1m\"")
	}
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		return nil, config.Errorf("spec.cron", "must not name a zone: set spec.timezone")
	}
	c, err := parser.Parse(expr)
	if err != nil {
		return nil, config.Errorf("spec.cron", "%q: %w", s.Cron, err)
	}
	sc.cron = c
	if d, ok := c.(cron.ConstantDelaySchedule); ok {
		sc.every = d.Delay
	}
	sc.Spec.Cron = expr

	switch s.Timezone {
	case "", "UTC":
		sc.Location, sc.Spec.Timezone = time.UTC, "UTC"
	case "Local":
		return nil, config.Errorf("spec.timezone", "\"Local\" differs between hosts: name an IANA zone, e.g. Europe/Paris")
	default:
		loc, err := time.LoadLocation(s.Timezone)
		if err != nil {
			return nil, config.Errorf("spec.timezone", "unknown zone %q: name an IANA zone, e.g. Europe/Paris: %w", s.Timezone, err)
		}
		sc.Location = loc
	}
	if sc.Next(reference).IsZero() {
		return nil, config.Errorf("spec.cron", "%q never matches", s.Cron)
	}

	switch {
	case s.ControlScript != "" && s.PublishEvent != nil:
		return nil, config.Errorf("spec", "has two actions: set controlscript or publish_event, not both")
	case s.ControlScript == "" && s.PublishEvent == nil:
		return nil, config.Errorf("spec", "has no action: set controlscript or publish_event")
	case s.ControlScript != "":
		if err := config.ValidateName(s.ControlScript); err != nil {
			return nil, config.Errorf("spec.controlscript", "%w", err)
		}
	default:
		if err := checkEvent(s.PublishEvent); err != nil {
			return nil, err
		}
	}

	switch s.Missed {
	case "":
		sc.Spec.Missed = MissedSkip
	case MissedSkip, MissedOnce, MissedCatchUp:
	default:
		return nil, config.Errorf("spec.missed", "must be skip, once or catch_up, got %q", s.Missed)
	}
	switch {
	case sc.Spec.Missed == MissedCatchUp && s.CatchUpLimit == nil:
		return nil, config.Errorf("spec.catch_up_limit", "is required with missed: catch_up (1 to %d)", MaxCatchUpLimit)
	case sc.Spec.Missed != MissedCatchUp && s.CatchUpLimit != nil:
		return nil, config.Errorf("spec.catch_up_limit", "applies only with missed: catch_up")
	case s.CatchUpLimit != nil && (*s.CatchUpLimit < 1 || *s.CatchUpLimit > MaxCatchUpLimit):
		return nil, config.Errorf("spec.catch_up_limit", "must be 1 to %d, got %d", MaxCatchUpLimit, *s.CatchUpLimit)
	}
	if s.Enabled == nil {
		t := true
		sc.Spec.Enabled = &t
	}
	return sc, nil
}

// checkEvent builds the event once to check its id, object and details.
func checkEvent(p *PublishEvent) error {
	objType := p.ObjType
	if objType == "" {
		objType = ObjType
	}
	objName := p.ObjName
	if objName == "" {
		objName = "x"
	}
	var details any
	if p.Details != nil {
		details = p.Details
	}
	_, err := events.New(p.EventID, objType, objName, details, Source, reference)
	var fe *events.FieldError
	if errors.As(err, &fe) {
		field := "spec.publish_event"
		switch fe.Field {
		case "data.event_id", "type":
			field += ".event_id"
		case "data.obj_type":
			field += ".obj_type"
		case "data.obj_name":
			field += ".obj_name"
		case "":
		default:
			if strings.HasPrefix(fe.Field, "data.event_details") {
				field += ".details" + strings.TrimPrefix(fe.Field, "data.event_details")
			}
		}
		return config.Errorf(field, "%s", fe.Message)
	}
	if err != nil {
		return config.Errorf("spec.publish_event", "%w", err)
	}
	return nil
}

// Enabled reports whether the schedule fires.
func (s *Schedule) Enabled() bool { return s.Spec.Enabled == nil || *s.Spec.Enabled }

// Action names the schedule's action: ActionControlScript or
// ActionPublishEvent.
func (s *Schedule) Action() string {
	if s.Spec.ControlScript != "" {
		return ActionControlScript
	}
	return ActionPublishEvent
}

func init() {
	config.Register(config.Kind{
		Name:        KindSchedule,
		Description: "runs a ControlScript or publishes an event on a cron schedule, once per slot across instances, with a policy for missed slots",
		Validate: func(spec json.RawMessage) error {
			_, err := Compile(spec)
			return err
		},
	})
}
