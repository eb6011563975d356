package actions

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"text/template"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"

	"github.com/vigilhq/vigil/events"
)

// Rule is a compiled AlertConfig: the match stage of the pipeline.
type Rule struct {
	Name    string
	Spec    *AlertConfigSpec
	raise   map[string]bool
	resolve map[string]bool
	cond    cel.Program // nil: no condition
	groupBy []cel.Program
	summary *template.Template // nil: the default summary
	// usesExtensions is set when a condition or group key reads the
	// event's extension attributes.
	usesExtensions bool
}

// Match is what an event means for a Rule.
type Match struct {
	// Raise is set when the event counts towards the rule's alert, Resolve
	// when it resolves it; at most one is set.
	Raise, Resolve bool
	// Key is the group key: the group_by values, JSON-encoded as an array.
	Key string
}

// CompileRule compiles an AlertConfig's condition and group keys. The spec
// must have passed DecodeAlertConfig.
func CompileRule(name string, spec *AlertConfigSpec) (*Rule, error) {
	r := &Rule{Name: name, Spec: spec, raise: map[string]bool{}, resolve: map[string]bool{}}
	for _, id := range spec.Events {
		r.raise[id] = true
	}
	for _, id := range spec.ResolveEvents {
		r.resolve[id] = true
	}
	env, err := Env()
	if err != nil {
		return nil, err
	}
	program := func(field, expr string, want *cel.Type) (cel.Program, error) {
		if strings.Contains(expr, "extensions") {
			r.usesExtensions = true
		}
		ast, err := CompileCondition(expr, want)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", name, field, err)
		}
		p, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", name, field, err)
		}
		return p, nil
	}
	if spec.Summary != "" {
		if r.summary, err = template.New("summary").Option("missingkey=error").Parse(spec.Summary); err != nil {
			return nil, fmt.Errorf("%s: spec.summary: %w", name, err)
		}
	}
	if spec.Condition != "" {
		if r.cond, err = program("spec.condition", spec.Condition, cel.BoolType); err != nil {
			return nil, err
		}
	}
	groupBy := spec.GroupBy
	if len(groupBy) == 0 {
		groupBy = DefaultGroupBy
	}
	for i, g := range groupBy {
		p, err := program(fmt.Sprintf("spec.group_by[%d]", i), g, nil)
		if err != nil {
			return nil, err
		}
		r.groupBy = append(r.groupBy, p)
	}
	return r, nil
}

// Match tells whether ev raises or resolves the rule's alert, and for which
// group. An error (a condition or group key that fails on this event, e.g.
// a missing details key) comes with no match.
func (r *Rule) Match(ev *events.Event) (Match, error) {
	var vars *eventVars
	return r.MatchWith(ev, &vars)
}

// MatchWith is Match with the event's CEL variables kept in *vars: made
// on first need, shared by the rules that look at the same event.
func (r *Rule) MatchWith(ev *events.Event, vars **eventVars) (Match, error) {
	d := &ev.Data
	raise, resolve := r.raise[d.EventID], r.resolve[d.EventID]
	if !raise && !resolve {
		return Match{}, nil
	}
	if r.Spec.ObjType != "" && d.ObjType != r.Spec.ObjType {
		return Match{}, nil
	}
	if r.Spec.ObjName != "" {
		if ok, _ := path.Match(r.Spec.ObjName, d.ObjName); !ok {
			return Match{}, nil
		}
	}
	if *vars == nil {
		v, err := newEventVars(ev)
		if err != nil {
			return Match{}, err
		}
		*vars = v
	}
	// The condition selects the events that raise the alert; a resolving
	// event only needs to be of the same object group.
	if raise && r.cond != nil {
		out, _, err := r.cond.Eval(*vars)
		if err != nil {
			return Match{}, fmt.Errorf("%s: condition: %w", r.Name, err)
		}
		if b, ok := out.Value().(bool); !ok || !b {
			return Match{}, nil
		}
	}
	key, err := r.key(*vars)
	if err != nil {
		return Match{}, err
	}
	return Match{Raise: raise, Resolve: resolve, Key: key}, nil
}

// key evaluates the group-by expressions.
func (r *Rule) key(vars *eventVars) (string, error) {
	vals := make([]any, len(r.groupBy))
	for i, p := range r.groupBy {
		out, _, err := p.Eval(vars)
		if err != nil {
			return "", fmt.Errorf("%s: group_by[%d]: %w", r.Name, i, err)
		}
		vals[i] = native(out)
	}
	b, err := json.Marshal(vals)
	if err != nil {
		return "", fmt.Errorf("%s: group key: %w", r.Name, err)
	}
	return string(b), nil
}

func native(v ref.Val) any {
	switch x := v.Value().(type) {
	case string, bool, int64, uint64, float64:
		return x
	default:
		return fmt.Sprint(x)
	}
}

// eventVars is the CEL activation of an event: the variables of
// ConditionVariables, read from the event as a condition asks for them. It
// is made once per event and shared by the rules that look at it.
type eventVars struct {
	ev      *events.Event
	details map[string]any
	ext     map[string]any
}

// newEventVars decodes what the event's variables need: the values of
// event_details, JSON numbers as int64 where they are integers.
func newEventVars(ev *events.Event) (*eventVars, error) {
	v := &eventVars{ev: ev}
	d := &ev.Data
	v.details = make(map[string]any, len(d.EventDetails))
	for k, raw := range d.EventDetails {
		var x any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&x); err != nil {
			return nil, fmt.Errorf("event %s: event_details.%s: %w", ev.ID, k, err)
		}
		v.details[k] = numbers(x)
	}
	v.ext = make(map[string]any, len(ev.Extensions))
	for k, x := range ev.Extensions {
		v.ext[k] = numbers(x)
	}
	return v, nil
}

// ResolveName implements interpreter.Activation.
func (v *eventVars) ResolveName(name string) (any, bool) {
	d := &v.ev.Data
	switch name {
	case "event_id":
		return d.EventID, true
	case "module":
		return d.Module, true
	case "obj_type":
		return d.ObjType, true
	case "obj_name":
		return d.ObjName, true
	case "obj_uuid":
		return d.ObjUUID, true
	case "tenant":
		return d.Tenant, true
	case "report_timestamp":
		return d.ReportTimestamp, true
	case "time":
		return v.ev.Time, true
	case "source":
		return v.ev.Source, true
	case "details":
		return v.details, true
	case "details_summary":
		return d.DetailsSummary, true
	case "extensions":
		return v.ext, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (v *eventVars) Parent() interpreter.Activation { return nil }

// numbers turns JSON numbers into int64 where they are integers, else
// float64, so that CEL compares them as written.
func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
		return x
	default:
		return v
	}
}

// Summarize renders the alert's summary: the config's template, or
// "<config>: <n> x <event id> on <obj_type> <obj_name>". A template that
// fails on this alert gives the default with the error appended.
func (r *Rule) Summarize(a *Alert) string {
	last := ""
	if len(a.Events) > 0 {
		last = a.Events[len(a.Events)-1].EventID
	}
	def := fmt.Sprintf("%s: %d x %s on %s %s", r.Name, len(a.Events), last, a.ObjType, a.ObjName)
	if r.summary == nil {
		return def
	}
	var b strings.Builder
	err := r.summary.Execute(&b, SummaryData{
		Name: r.Name, Level: a.Level, ObjType: a.ObjType, ObjName: a.ObjName, ObjUUID: a.ObjUUID,
		EventID: last, ThrottleCount: a.ThrottleCount, Events: a.Events,
	})
	if err != nil {
		return def + " (summary: " + err.Error() + ")"
	}
	return b.String()
}

// Explain says why ev does not match the rule ("" when it does).
func (r *Rule) Explain(ev *events.Event) string {
	d := &ev.Data
	switch {
	case !r.raise[d.EventID] && !r.resolve[d.EventID]:
		return "event " + d.EventID + " is not in events or resolve_events"
	case r.Spec.ObjType != "" && d.ObjType != r.Spec.ObjType:
		return fmt.Sprintf("obj_type %q is not %q", d.ObjType, r.Spec.ObjType)
	}
	if r.Spec.ObjName != "" {
		if ok, _ := path.Match(r.Spec.ObjName, d.ObjName); !ok {
			return fmt.Sprintf("obj_name %q does not match %q", d.ObjName, r.Spec.ObjName)
		}
	}
	m, err := r.Match(ev)
	switch {
	case err != nil:
		return err.Error()
	case !m.Raise && !m.Resolve:
		return "condition is false"
	}
	return ""
}
