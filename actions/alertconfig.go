package actions

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"text/template"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/events"
)

// KindAlertConfig is the kind of an AlertConfig object.
const KindAlertConfig = "AlertConfig"

// Categories of an AlertConfig.
const (
	CategoryRealtime      = "realtime"
	CategoryRollingWindow = "rolling_window"
)

// Levels of an alert, as Avi's ALERT_LOW, ALERT_MEDIUM and ALERT_HIGH.
const (
	LevelLow    = "low"
	LevelMedium = "medium"
	LevelHigh   = "high"
)

// Defaults of an AlertConfig, Avi's where Avi has one.
const (
	DefaultThreshold = 1
	DefaultWindow    = 300 * time.Second
	DefaultThrottle  = 600 * time.Second
	DefaultExpiry    = 86400 * time.Second
)

// MaxThreshold bounds a rolling window's threshold: the window keeps the
// time of each hit in the group's state, one write of at most 1 MiB.
const MaxThreshold = 10000

// DefaultGroupBy groups alerts per object, as Avi does.
var DefaultGroupBy = []string{"obj_type", "obj_name"}

// AlertConfigSpec is the spec of an AlertConfig: which events raise an
// alert, when, and which ActionGroup acts on it.
type AlertConfigSpec struct {
	// Events are the event ids that raise the alert: the catalogue's
	// (`vigil events catalogue`) or ones declared in CustomEvents.
	Events []string `json:"events,omitempty"`
	// CustomEvents declares event ids outside the catalogue that Events and
	// ResolveEvents use, e.g. ids a DataScript or a webhook receiver
	// publishes; declaring them makes a typo in Events an error rather than
	// a rule that never matches.
	CustomEvents []string `json:"custom_events,omitempty"`
	// ObjType must equal the event's obj_type when set.
	ObjType string `json:"obj_type,omitempty"`
	// ObjName is a glob (path.Match: *, ?, [a-z]) on the event's obj_name.
	ObjName string `json:"obj_name,omitempty"`
	// Condition is a CEL expression over the event that must be true; see
	// ConditionVariables.
	Condition string `json:"condition,omitempty"`
	// Category is realtime (every match raises the alert; the default) or
	// rolling_window (Threshold matches within Window).
	Category string `json:"category,omitempty"`
	// Threshold and Window apply to rolling_window; defaults 1 and 300s.
	Threshold int             `json:"threshold,omitempty"`
	Window    config.Duration `json:"window,omitempty"`
	// GroupBy are CEL expressions over the event whose values key one alert
	// each; default obj_type and obj_name (one alert per object).
	GroupBy []string `json:"group_by,omitempty"`
	// Throttle suppresses actions for this long after an alert and counts
	// the suppressed ones; default 600s, 0 for none.
	Throttle *config.Duration `json:"throttle,omitempty"`
	// Mode is one of Event-Driven Ansible's throttles, per group key.
	Mode *Mode `json:"mode,omitempty"`
	// ResolveEvents resolve the group's alert, e.g. SERVER_UP for
	// SERVER_DOWN: catalogue ids or ones declared in CustomEvents.
	ResolveEvents []string `json:"resolve_events,omitempty"`
	// Expiry removes an alert this long after it was raised; default 86400s.
	Expiry config.Duration `json:"expiry,omitempty"`
	// Level is low (the default), medium or high.
	Level string `json:"level,omitempty"`
	// Summary is a Go text/template over the alert, e.g.
	// "{{.ObjName}} is down ({{len .Events}} times)"; see SummaryData.
	Summary string `json:"summary,omitempty"`
	// Enabled false keeps the config without acting on it; default true.
	Enabled *bool `json:"enabled,omitempty"`
	// ActionGroup names the ActionGroup that acts on the alerts.
	ActionGroup string `json:"action_group,omitempty"`
}

// Mode holds exactly one of Event-Driven Ansible's throttle modes.
type Mode struct {
	// OnceWithin acts on the first match of a group, then ignores the group
	// for this long.
	OnceWithin config.Duration `json:"once_within,omitempty"`
	// OnceAfter waits this long from a group's first match, then acts once
	// on all the matches seen.
	OnceAfter config.Duration `json:"once_after,omitempty"`
	// AccumulateWithin acts when Threshold matches of a group arrive within
	// this long.
	AccumulateWithin config.Duration `json:"accumulate_within,omitempty"`
}

// SummaryData is what a Summary template sees.
type SummaryData struct {
	Name          string
	Level         string
	ObjType       string
	ObjName       string
	ObjUUID       string
	EventID       string
	ThrottleCount int
	Events        []events.Record
}

// ConditionVariables are the variables a Condition or GroupBy expression
// can use, and their CEL types.
var ConditionVariables = []struct {
	Name string
	Type *cel.Type
}{
	{"event_id", cel.StringType},
	{"module", cel.StringType},
	{"obj_type", cel.StringType},
	{"obj_name", cel.StringType},
	{"obj_uuid", cel.StringType},
	{"tenant", cel.StringType},
	{"report_timestamp", cel.IntType},
	{"time", cel.TimestampType},
	{"source", cel.StringType},
	{"details", cel.MapType(cel.StringType, cel.DynType)},
	{"details_summary", cel.StringType},
	{"extensions", cel.MapType(cel.StringType, cel.DynType)},
}

// Env is the CEL environment of conditions and group keys.
var Env = sync.OnceValues(func() (*cel.Env, error) {
	// Details are JSON: numbers may be ints or doubles, and a condition
	// compares them with either.
	opts := []cel.EnvOption{cel.CrossTypeNumericComparisons(true)}
	for _, v := range ConditionVariables {
		opts = append(opts, cel.Variable(v.Name, v.Type))
	}
	return cel.NewEnv(opts...)
})

// CompileCondition compiles and type-checks a CEL expression that must
// yield want (nil: any of string, int, uint, bool). Errors give the line
// and column.
func CompileCondition(expr string, want *cel.Type) (*cel.Ast, error) {
	env, err := Env()
	if err != nil {
		return nil, fmt.Errorf("CEL environment: %w", err)
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, celError(iss)
	}
	out := ast.OutputType()
	switch {
	case want != nil && !out.IsExactType(want) && !out.IsExactType(types.DynType):
		return nil, fmt.Errorf("yields %s, want %s", out, want)
	case want == nil && !slices.ContainsFunc([]*cel.Type{cel.StringType, cel.IntType, cel.UintType, cel.BoolType, cel.DynType}, out.IsExactType):
		return nil, fmt.Errorf("yields %s, want a string, an int or a bool", out)
	}
	return ast, nil
}

// celError turns CEL's issues into one message per issue, each with its
// line and column.
func celError(iss *cel.Issues) error {
	var msgs []string
	for _, e := range iss.Errors() {
		msgs = append(msgs, fmt.Sprintf("line %d, column %d: %s", e.Location.Line(), e.Location.Column()+1, e.Message))
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}

var eventIDRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,127}$`)

// DecodeAlertConfig decodes and checks an AlertConfig spec.
func DecodeAlertConfig(spec json.RawMessage) (*AlertConfigSpec, error) {
	var s AlertConfigSpec
	if err := config.DecodeSpec(spec, &s); err != nil {
		return nil, err
	}
	return &s, checkAlertConfig(&s)
}

func checkAlertConfig(s *AlertConfigSpec) error {
	if len(s.Events) == 0 {
		return config.Errorf("spec.events", "is required: at least one event id")
	}
	custom := map[string]bool{}
	for i, id := range s.CustomEvents {
		f := fmt.Sprintf("spec.custom_events[%d]", i)
		if !eventIDRE.MatchString(id) {
			return config.Errorf(f, "%q is not an event id (A-Z, 0-9 and _, starting with a letter)", id)
		}
		if _, ok := events.Lookup(id); ok {
			return config.Errorf(f, "%s is in the catalogue: list it in spec.events", id)
		}
		custom[id] = true
	}
	checkIDs := func(field string, ids []string) error {
		for i, id := range ids {
			f := fmt.Sprintf("%s[%d]", field, i)
			if _, ok := events.Lookup(id); ok || custom[id] {
				continue
			}
			msg := fmt.Sprintf("unknown event id %q", id)
			if near := nearestEventID(id); near != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", near)
			}
			return config.Errorf(f, "%s; declare ids outside the catalogue in spec.custom_events", msg)
		}
		return nil
	}
	if err := checkIDs("spec.events", s.Events); err != nil {
		return err
	}
	if err := checkIDs("spec.resolve_events", s.ResolveEvents); err != nil {
		return err
	}
	for i, id := range s.ResolveEvents {
		if slices.Contains(s.Events, id) {
			return config.Errorf(fmt.Sprintf("spec.resolve_events[%d]", i), "%s also raises the alert (spec.events)", id)
		}
	}
	for i, id := range s.CustomEvents {
		if !slices.Contains(s.Events, id) && !slices.Contains(s.ResolveEvents, id) {
			return config.Errorf(fmt.Sprintf("spec.custom_events[%d]", i), "%s is declared but neither raises nor resolves the alert", id)
		}
	}
	if s.ObjName != "" {
		if _, err := path.Match(s.ObjName, ""); err != nil {
			return config.Errorf("spec.obj_name", "bad glob %q: %v", s.ObjName, err)
		}
	}
	if s.Condition != "" {
		if _, err := CompileCondition(s.Condition, cel.BoolType); err != nil {
			return config.Errorf("spec.condition", "%v", err)
		}
	}
	for i, g := range s.GroupBy {
		if _, err := CompileCondition(g, nil); err != nil {
			return config.Errorf(fmt.Sprintf("spec.group_by[%d]", i), "%v", err)
		}
	}
	switch s.Category {
	case "", CategoryRealtime:
		if s.Threshold != 0 || s.Window != 0 {
			return config.Errorf("spec.threshold", "applies to category rolling_window only")
		}
	case CategoryRollingWindow:
	default:
		return config.Errorf("spec.category", "must be realtime or rolling_window, got %q", s.Category)
	}
	switch {
	case s.Threshold < 0 || s.Threshold > MaxThreshold:
		return config.Errorf("spec.threshold", "must be from 1 to %d, got %d", MaxThreshold, s.Threshold)
	case s.Window.D() < 0 || s.Window.D() > 7*24*time.Hour:
		return config.Errorf("spec.window", "must be at most 168h (7 days), got %s", s.Window.D())
	case s.Throttle != nil && (s.Throttle.D() < 0 || s.Throttle.D() > 7*24*time.Hour):
		return config.Errorf("spec.throttle", "must be from 0 to 168h (7 days), got %s", s.Throttle.D())
	case s.Expiry.D() < 0 || s.Expiry.D() > 365*24*time.Hour:
		return config.Errorf("spec.expiry", "must be at most 8760h (365 days), got %s", s.Expiry.D())
	}
	if m := s.Mode; m != nil {
		n := 0
		for _, d := range []config.Duration{m.OnceWithin, m.OnceAfter, m.AccumulateWithin} {
			if d.D() < 0 || d.D() > 7*24*time.Hour {
				return config.Errorf("spec.mode", "durations must be from 1s to 168h (7 days)")
			}
			if d != 0 {
				n++
			}
		}
		if n != 1 {
			return config.Errorf("spec.mode", "must set exactly one of once_within, once_after and accumulate_within")
		}
		if m.AccumulateWithin == 0 && s.Category == CategoryRollingWindow {
			return config.Errorf("spec.mode", "once_within and once_after do not combine with category rolling_window")
		}
		if m.AccumulateWithin != 0 && s.Window != 0 {
			return config.Errorf("spec.window", "is not used with mode accumulate_within, whose window starts at a group's first match")
		}
		if s.Throttle != nil {
			return config.Errorf("spec.throttle", "is not used with a mode, which throttles by itself")
		}
	}
	if err := checkLevel(s.Level); err != nil {
		return err
	}
	if s.Summary != "" {
		if err := checkSummary(s.Summary); err != nil {
			return config.Errorf("spec.summary", "%v", err)
		}
	}
	if s.ActionGroup != "" {
		if err := config.ValidateName(s.ActionGroup); err != nil {
			return config.Errorf("spec.action_group", "%v", err)
		}
	}
	return nil
}

// checkSummary parses a summary template and runs it once on sample data,
// so that a misspelt field is refused now rather than at the first alert.
func checkSummary(text string) error {
	t, err := template.New("summary").Option("missingkey=error").Parse(text)
	if err != nil {
		return err
	}
	sample := SummaryData{
		Name: "n", Level: LevelLow, ObjType: "pool", ObjName: "web", EventID: "SERVER_DOWN",
		Events: []events.Record{{EventID: "SERVER_DOWN", ObjType: "pool", ObjName: "web"}},
	}
	var b strings.Builder
	return t.Execute(&b, sample)
}

// nearestEventID returns the catalogue id closest to id by edit distance,
// if it is close.
func nearestEventID(id string) string {
	best, bestD := "", 4
	for _, in := range events.Catalogue() {
		if d := editDistance(id, in.ID); d < bestD {
			best, bestD = in.ID, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// checkLevel checks a spec.level.
func checkLevel(level string) error {
	switch level {
	case "", LevelLow, LevelMedium, LevelHigh:
		return nil
	}
	return config.Errorf("spec.level", "must be low, medium or high, got %q", level)
}

func validateAlertConfig(spec json.RawMessage) error {
	_, err := DecodeAlertConfig(spec)
	return err
}

func init() {
	config.Register(config.Kind{
		Name:        KindAlertConfig,
		Description: "which events raise an alert, when, and the ActionGroup that acts on it",
		Validate:    validateAlertConfig,
	})
}
