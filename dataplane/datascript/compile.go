package datascript

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/ast"
	"github.com/yuin/gopher-lua/parse"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/dataplane/spec"
)

// Set is a compiled DataScriptSet: one shared function prototype per event
// and the names its scripts may use. A Set is immutable and shared by every
// engine that runs it.
type Set struct {
	name   string
	chunk  string // `[string "<name>"]`, the chunk name in messages
	protos [numEvents]*lua.FunctionProto

	pools        map[string]bool
	stringGroups map[string]bool
	ipGroups     map[string]bool
	limiters     map[string]spec.RateLimiter
}

// Name returns the set's name.
func (s *Set) Name() string { return s.name }

// Has reports whether the set has a chunk for the event evt.
func (s *Set) Has(evt string) bool {
	ev, ok := eventOf(evt)
	return ok && s.protos[ev] != nil
}

// Compile compiles every chunk of ds once, named after the set so that
// messages read `[string "<set>"]:3: ...` as in Avi. A syntax error, an
// unknown event, or a literal pool, string group, IP group or rate limiter
// name that ds does not list is a *config.FieldError naming the script's
// field (spec.datascript[i].script) and the line.
func Compile(setName string, ds *spec.DataScriptSet) (*Set, error) {
	s := &Set{
		name:         setName,
		chunk:        `[string "` + setName + `"]`,
		pools:        toSet(ds.PoolRefs),
		stringGroups: toSet(ds.StringGroupRefs),
		ipGroups:     toSet(ds.IPGroupRefs),
		limiters:     make(map[string]spec.RateLimiter, len(ds.RateLimiters)),
	}
	for _, rl := range ds.RateLimiters {
		s.limiters[rl.Name] = rl.WithDefaults()
	}
	for i, d := range ds.DataScript {
		field := fmt.Sprintf("spec.datascript[%d]", i)
		ev, ok := eventOf(d.Evt)
		if !ok {
			return nil, config.Errorf(field+".evt", "unknown event %q", d.Evt)
		}
		if s.protos[ev] != nil {
			return nil, config.Errorf(field+".evt", "%s has a script already in this set", d.Evt)
		}
		field += ".script"
		if len(d.Script) > spec.MaxScriptSize {
			return nil, config.Errorf(field, "is %d bytes, over the limit of %d", len(d.Script), spec.MaxScriptSize)
		}
		chunk, err := parse.Parse(strings.NewReader(d.Script), s.chunk)
		if err != nil {
			var perr *parse.Error
			if errors.As(err, &perr) {
				if perr.Pos.Line == parse.EOF {
					// As luac says it: the last line, near <eof>.
					last := strings.Count(strings.TrimRight(d.Script, "\n"), "\n") + 1
					return nil, config.Errorf(field, "luac: %s:%d: %s near <eof>", setName, last, perr.Message)
				}
				return nil, config.Errorf(field, "luac: %s:%d: %s near '%s'", setName, perr.Pos.Line, perr.Message, perr.Token)
			}
			return nil, config.Errorf(field, "luac: %s: %v", setName, err)
		}
		if err := s.checkRefs(chunk); err != nil {
			return nil, config.Errorf(field, "%s", err.Error())
		}
		proto, err := lua.Compile(chunk, s.chunk)
		if err != nil {
			var cerr *lua.CompileError
			if errors.As(err, &cerr) {
				return nil, config.Errorf(field, "luac: %s:%d: %s", setName, cerr.Line, cerr.Message)
			}
			return nil, config.Errorf(field, "luac: %s: %v", setName, err)
		}
		// A chunk gets no Lua 5.0 "arg" table: it would cost a table per
		// run, and a chunk has no arguments.
		proto.IsVarArg &^= lua.VarArgNeedsArg
		s.protos[ev] = proto
	}
	return s, nil
}

func toSet(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// refCheck is a function whose first (or, for avi.vs.ratelimit.exceed,
// named) argument must be listed in the set when it is a literal.
type refCheck struct {
	path  string // avi.pool.select
	kind  string // "pool" for messages
	field string // pool_refs
}

var refChecks = []refCheck{
	{"avi.pool.select", "pool", "pool_refs"},
	{"avi.pool.get_servers", "pool", "pool_refs"},
	{"avi.pool.get_server_status", "pool", "pool_refs"},
	{"avi.ipgroup.contains", "IP group", "ip_group_refs"},
	{"avi.vs.ratelimit.exceed", "rate limiter", "rate_limiters"},
}

func init() {
	for _, f := range stringGroupFuncs {
		refChecks = append(refChecks, refCheck{"avi.stringgroup." + f, "string group", "string_group_refs"})
	}
}

// checkRefs walks the chunk for calls of the functions in refChecks with a
// literal string first argument and refuses names the set does not list.
// Names made at run time are checked when the call runs.
func (s *Set) checkRefs(chunk []ast.Stmt) error {
	var err error
	walkAST(reflect.ValueOf(chunk), func(call *ast.FuncCallExpr) {
		if err != nil || call.Func == nil || len(call.Args) == 0 {
			return
		}
		path, ok := dottedName(call.Func)
		if !ok {
			return
		}
		i := slices.IndexFunc(refChecks, func(c refCheck) bool { return c.path == path })
		if i < 0 {
			return
		}
		lit, ok := call.Args[0].(*ast.StringExpr)
		if !ok {
			return
		}
		c := refChecks[i]
		var listed bool
		switch c.field {
		case "pool_refs":
			listed = s.pools[lit.Value]
		case "ip_group_refs":
			listed = s.ipGroups[lit.Value]
		case "string_group_refs":
			listed = s.stringGroups[lit.Value]
		case "rate_limiters":
			_, listed = s.limiters[lit.Value]
		}
		if !listed {
			err = fmt.Errorf("line %d: %s names %s %q, which is not in the set's %s", call.Line(), path, c.kind, lit.Value, c.field)
		}
	})
	return err
}

// dottedName returns "a.b.c" for the expression a.b.c made of a global
// name and constant string keys.
func dottedName(e ast.Expr) (string, bool) {
	switch x := e.(type) {
	case *ast.IdentExpr:
		return x.Value, true
	case *ast.AttrGetExpr:
		key, ok := x.Key.(*ast.StringExpr)
		if !ok {
			return "", false
		}
		obj, ok := dottedName(x.Object)
		if !ok {
			return "", false
		}
		return obj + "." + key.Value, true
	}
	return "", false
}

var funcCallType = reflect.TypeFor[*ast.FuncCallExpr]()

// walkAST calls visit for every function call under v, whatever the node
// types in between (it follows every pointer, interface, slice and struct
// field, so new node kinds need no code here).
func walkAST(v reflect.Value, visit func(*ast.FuncCallExpr)) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return
		}
		if v.Type() == funcCallType {
			visit(v.Interface().(*ast.FuncCallExpr))
		}
		walkAST(v.Elem(), visit)
	case reflect.Slice:
		for i := range v.Len() {
			walkAST(v.Index(i), visit)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				walkAST(v.Field(i), visit)
			}
		}
	}
}
