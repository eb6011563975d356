package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/events"
)

// celCostLimit bounds the work of one expression evaluation.
const celCostLimit = 100_000

// celEnv is the CEL environment of the event id and object expressions:
// body is the decoded JSON body (for alertmanager, one alert) and headers
// maps each lower-case request header name to its first value.
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.CrossTypeNumericComparisons(true),
		cel.Variable("body", cel.DynType),
		cel.Variable("headers", cel.MapType(cel.StringType, cel.StringType)),
	)
})

// value is one string the events take: fixed, from a dotted path into the
// body, or from a CEL expression.
type value struct {
	field   string // the spec field, for error messages
	fixed   string
	path    []string
	prog    cel.Program
	isFixed bool
}

// mapping says how a JSON body becomes an event.
type mapping struct {
	eventID, objType, objName *value
	deliveryPath              []string
	deliveryHeader            string
	usesHeaders               bool
}

func compileMapping(s *Spec) (mapping, error) {
	var m mapping
	var err error
	if m.eventID, err = compileValue("event_id", s.EventID, s.EventIDPath, s.EventIDExpr); err != nil {
		return m, err
	}
	if m.eventID != nil && m.eventID.isFixed {
		if !events.ValidEventID(s.EventID) {
			return m, config.Errorf("spec.event_id", "%q must match ^[A-Z][A-Z0-9_]*$ (at most 128 bytes)", s.EventID)
		}
	}
	if m.objType, err = compileValue("obj_type", s.ObjType, s.ObjTypePath, s.ObjTypeExpr); err != nil {
		return m, err
	}
	if m.objName, err = compileValue("obj_name", s.ObjName, s.ObjNamePath, s.ObjNameExpr); err != nil {
		return m, err
	}
	if s.DeliveryIDPath != "" {
		m.deliveryPath, _ = parsePath(s.DeliveryIDPath)
	}
	m.deliveryHeader = s.DeliveryIDHeader
	for _, v := range []*value{m.eventID, m.objType, m.objName} {
		if v != nil && v.prog != nil {
			m.usesHeaders = true
		}
	}
	return m, nil
}

func compileValue(field, fixed, path, expr string) (*value, error) {
	n := 0
	for _, s := range []string{fixed, path, expr} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		return nil, config.Errorf("spec."+field, "give one of %s, %s_path and %s_expr", field, field, field)
	}
	v := &value{field: field}
	switch {
	case fixed != "":
		v.fixed, v.isFixed = fixed, true
	case path != "":
		p, err := parsePath(path)
		if err != nil {
			return nil, config.Errorf("spec."+field+"_path", "%v", err)
		}
		v.path = p
	case expr != "":
		prog, err := compileExpr(expr)
		if err != nil {
			return nil, config.Errorf("spec."+field+"_expr", "%v", err)
		}
		v.prog = prog
	default:
		return nil, nil
	}
	return v, nil
}

func compileExpr(expr string) (cel.Program, error) {
	env, err := celEnv()
	if err != nil {
		return nil, fmt.Errorf("CEL environment: %w", err)
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		var msgs []string
		for _, e := range iss.Errors() {
			msgs = append(msgs, fmt.Sprintf("line %d, column %d: %s", e.Location.Line(), e.Location.Column()+1, e.Message))
		}
		return nil, errors.New(strings.Join(msgs, "; "))
	}
	if out := ast.OutputType(); !out.IsExactType(types.StringType) && !out.IsExactType(types.DynType) {
		return nil, fmt.Errorf("yields %s, want a string", out)
	}
	prog, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(celCostLimit))
	if err != nil {
		return nil, fmt.Errorf("CEL program: %w", err)
	}
	return prog, nil
}

// parsePath splits a dotted path such as "data.items.0.name"; a segment
// that is a number indexes a list.
func parsePath(p string) ([]string, error) {
	if len(p) > 512 {
		return nil, errors.New("path is longer than 512 bytes")
	}
	segs := strings.Split(p, ".")
	for _, s := range segs {
		if s == "" {
			return nil, fmt.Errorf("%q is not a dotted path such as data.kind", p)
		}
	}
	return segs, nil
}

// lookup follows path through v, a value decoded by encoding/json.
func lookup(v any, path []string) (any, bool) {
	for _, seg := range path {
		switch t := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = t[seg]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(t) {
				return nil, false
			}
			v = t[i]
		default:
			return nil, false
		}
	}
	return v, v != nil
}

// scalarString formats a JSON scalar; ok is false for objects and lists.
func scalarString(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(t), true
	}
	return "", false
}

// eval returns the value for body; "" when a path finds nothing. The
// error is a *requestError naming the spec field.
func (v *value) eval(body any, headers map[string]string) (string, error) {
	switch {
	case v == nil:
		return "", nil
	case v.isFixed:
		return v.fixed, nil
	case v.path != nil:
		x, ok := lookup(body, v.path)
		if !ok {
			return "", nil
		}
		s, ok := scalarString(x)
		if !ok {
			return "", badRequest(v.field, "%s_path %q leads to a JSON object or list, not a string", v.field, strings.Join(v.path, "."))
		}
		return s, nil
	}
	out, _, err := v.prog.Eval(map[string]any{"body": body, "headers": headers})
	if err != nil {
		return "", badRequest(v.field, "%s_expr failed on this body: %v", v.field, err)
	}
	s, ok := out.Value().(string)
	if !ok {
		return "", badRequest(v.field, "%s_expr yields %s, not a string", v.field, out.Type().TypeName())
	}
	return s, nil
}

// headerMap gives CEL the request headers: lower-case names, first values.
func headerMap(h http.Header) map[string]string {
	m := make(map[string]string, len(h))
	for k, vs := range h {
		if len(vs) > 0 {
			m[strings.ToLower(k)] = vs[0]
		}
	}
	return m
}

// toEventID upper-cases s and turns every other character outside A-Z,
// 0-9 and '_' into '_': "pull_request" gives "PULL_REQUEST", "invoice.paid"
// gives "INVOICE_PAID".
func toEventID(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z':
			b = append(b, c-'a'+'A')
		case 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_':
			b = append(b, c)
		default:
			b = append(b, '_')
		}
	}
	return string(b)
}
