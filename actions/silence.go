package actions

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/events"
)

// KindSilence is the kind of a Silence object.
const KindSilence = "Silence"

// SilenceSpec is the spec of a Silence: for its time range, alerts whose
// event and config match every matcher are recorded but their actions are
// held back (a maintenance window).
type SilenceSpec struct {
	// Matchers must all match.
	Matchers []Matcher `json:"matchers"`
	// Starts (default: at once) and Ends bound it, RFC 3339.
	Starts *time.Time `json:"starts,omitempty"`
	Ends   time.Time  `json:"ends"`
	// Comment says why; required.
	Comment string `json:"comment"`
}

// Matcher compares one field of the event, or the AlertConfig's name.
type Matcher struct {
	// Field is event_id, obj_type, obj_name, obj_uuid, tenant, config (the
	// AlertConfig's name) or label.<name> (a CloudEvents extension).
	Field string `json:"field"`
	// Op is = (the default), !=, =~ or !~ (an RE2 regular expression that
	// must match the whole value).
	Op    string `json:"op,omitempty"`
	Value string `json:"value"`
}

// Silence is a checked Silence, ready to match.
type Silence struct {
	Name     string
	Spec     *SilenceSpec
	matchers []matcher
}

type matcher struct {
	field, label string
	negate       bool
	eq           string
	re           *regexp.Regexp // nil: equality
}

var silenceFields = map[string]bool{"event_id": true, "obj_type": true, "obj_name": true, "obj_uuid": true, "tenant": true, "config": true}

// CompileSilence checks a Silence spec and compiles its matchers.
func CompileSilence(name string, spec json.RawMessage) (*Silence, error) {
	var s SilenceSpec
	if err := config.DecodeSpec(spec, &s); err != nil {
		return nil, err
	}
	if len(s.Matchers) == 0 {
		return nil, config.Errorf("spec.matchers", "is required: a silence without matchers would hold back every action")
	}
	if strings.TrimSpace(s.Comment) == "" {
		return nil, config.Errorf("spec.comment", "is required: say why actions are held back")
	}
	if s.Ends.IsZero() {
		return nil, config.Errorf("spec.ends", "is required (RFC 3339)")
	}
	if s.Starts != nil && !s.Ends.After(*s.Starts) {
		return nil, config.Errorf("spec.ends", "must be after spec.starts")
	}
	sil := &Silence{Name: name, Spec: &s}
	for i, m := range s.Matchers {
		f := fmt.Sprintf("spec.matchers[%d]", i)
		cm := matcher{field: m.Field, eq: m.Value}
		if l, ok := strings.CutPrefix(m.Field, "label."); ok && l != "" {
			cm.field, cm.label = "label", l
		} else if !silenceFields[m.Field] {
			return nil, config.Errorf(f+".field", "unknown field %q: event_id, obj_type, obj_name, obj_uuid, tenant, config or label.<name>", m.Field)
		}
		switch m.Op {
		case "", "=":
		case "!=":
			cm.negate = true
		case "=~", "!~":
			re, err := regexp.Compile("^(?:" + m.Value + ")$")
			if err != nil {
				return nil, config.Errorf(f+".value", "bad regular expression: %v", err)
			}
			cm.re, cm.negate = re, m.Op == "!~"
		default:
			return nil, config.Errorf(f+".op", "must be =, !=, =~ or !~, got %q", m.Op)
		}
		sil.matchers = append(sil.matchers, cm)
	}
	return sil, nil
}

// Active reports whether now is inside the silence's time range.
func (s *Silence) Active(now time.Time) bool {
	return (s.Spec.Starts == nil || !now.Before(*s.Spec.Starts)) && now.Before(s.Spec.Ends)
}

// UsesLabels reports whether a matcher reads a label (an extension
// attribute of the event).
func (s *Silence) UsesLabels() bool {
	for _, m := range s.matchers {
		if m.field == "label" {
			return true
		}
	}
	return false
}

// Matches reports whether the silence covers an alert of configName
// raised by ev.
func (s *Silence) Matches(configName string, ev *events.Event) bool {
	for _, m := range s.matchers {
		var v string
		switch m.field {
		case "event_id":
			v = ev.Data.EventID
		case "obj_type":
			v = ev.Data.ObjType
		case "obj_name":
			v = ev.Data.ObjName
		case "obj_uuid":
			v = ev.Data.ObjUUID
		case "tenant":
			v = ev.Data.Tenant
		case "config":
			v = configName
		case "label":
			if x, ok := ev.Extensions[m.label]; ok {
				v = fmt.Sprint(x)
			}
		}
		ok := v == m.eq
		if m.re != nil {
			ok = m.re.MatchString(v)
		}
		if ok == m.negate {
			return false
		}
	}
	return true
}

func init() {
	config.Register(config.Kind{
		Name:        KindSilence,
		Description: "holds back the actions of matching alerts for a time (maintenance windows); the alerts are still recorded",
		Validate: func(spec json.RawMessage) error {
			_, err := CompileSilence("", spec)
			return err
		},
	})
}
