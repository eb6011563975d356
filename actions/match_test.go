package actions

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/events"
)

func rule(t *testing.T, spec string) *Rule {
	t.Helper()
	s, err := DecodeAlertConfig(json.RawMessage(spec))
	if err != nil {
		t.Fatal(err)
	}
	r, err := CompileRule("r", s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func event(t *testing.T, id, objType, objName string, details string) *events.Event {
	t.Helper()
	var d any
	if details != "" {
		if err := json.Unmarshal([]byte(details), &d); err != nil {
			t.Fatal(err)
		}
	}
	ev, err := events.New(id, objType, objName, d, "/test", time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestRuleMatch(t *testing.T) {
	r := rule(t, `{"events": ["SERVER_DOWN"], "resolve_events": ["SERVER_UP"], "obj_type": "pool", "obj_name": "web-*",
		"condition": "details['se_hm_pool_details']['percent_servers_up'] < 50.5 && details['se_hm_pool_details']['port'] == 80"}`)
	down := `{"se_hm_pool_details": {"percent_servers_up": 50, "port": 80}}`
	for _, c := range []struct {
		name                     string
		ev                       *events.Event
		raise, resolve, wantsErr bool
	}{
		{"raises", event(t, "SERVER_DOWN", "pool", "web-1", down), true, false, false},
		{"other event", event(t, "POOL_DOWN", "pool", "web-1", ""), false, false, false},
		{"other type", event(t, "SERVER_DOWN", "virtualservice", "web-1", down), false, false, false},
		{"other name", event(t, "SERVER_DOWN", "pool", "api-1", down), false, false, false},
		{"condition false", event(t, "SERVER_DOWN", "pool", "web-1", `{"se_hm_pool_details": {"percent_servers_up": 75, "port": 80}}`), false, false, false},
		{"condition on a missing key", event(t, "SERVER_DOWN", "pool", "web-1", `{"se_hm_pool_details": {"port": 80}}`), false, false, true},
		{"resolves without the condition", event(t, "SERVER_UP", "pool", "web-1", ""), false, true, false},
	} {
		m, err := r.Match(c.ev)
		if m.Raise != c.raise || m.Resolve != c.resolve || (err != nil) != c.wantsErr {
			t.Errorf("%s: %+v %v", c.name, m, err)
		}
		if (m.Raise || m.Resolve) && m.Key != `["pool","web-1"]` {
			t.Errorf("%s: key %s, want the object", c.name, m.Key)
		}
	}
}

func TestRuleGroupKeys(t *testing.T) {
	r := rule(t, `{"events": ["SERVER_DOWN"], "group_by": ["details['se_hm_pool_details']['server']", "report_timestamp / 3600", "obj_name.startsWith('web')"]}`)
	m, err := r.Match(event(t, "SERVER_DOWN", "pool", "web", `{"se_hm_pool_details": {"server": "10.0.0.1:80"}}`))
	if err != nil || !m.Raise {
		t.Fatalf("%+v %v", m, err)
	}
	hour, _ := json.Marshal(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).Unix() / 3600)
	if want := `["10.0.0.1:80",` + string(hour) + `,true]`; m.Key != want {
		t.Errorf("key %s, want %s", m.Key, want)
	}
	_, err = r.Match(event(t, "SERVER_DOWN", "pool", "web", `{"se_hm_pool_details": {}}`))
	if err == nil || !strings.Contains(err.Error(), "group_by[0]") {
		t.Errorf("a group key on a missing detail: %v", err)
	}
}

func TestRuleCustomEvents(t *testing.T) {
	r := rule(t, `{"events": ["MY_APP_DOWN"], "custom_events": ["MY_APP_DOWN", "MY_APP_UP"], "resolve_events": ["MY_APP_UP"], "condition": "extensions['region'] == 'eu'"}`)
	ev := event(t, "MY_APP_DOWN", "app", "shop", `{"k": 1}`)
	if m, err := r.Match(ev); err == nil || m.Raise {
		t.Errorf("no region extension: %+v %v", m, err)
	}
	ev.Extensions = map[string]any{"region": "eu"}
	if m, err := r.Match(ev); err != nil || !m.Raise {
		t.Errorf("region eu: %+v %v", m, err)
	}
	if m, _ := r.Match(event(t, "MY_APP_UP", "app", "shop", "")); !m.Resolve {
		t.Errorf("MY_APP_UP does not resolve: %+v", m)
	}
}

func TestRuleSummary(t *testing.T) {
	r := rule(t, `{"events": ["SERVER_DOWN"], "summary": "{{.ObjName}}: {{len .Events}} x {{.EventID}}, {{.ThrottleCount}} throttled"}`)
	a := &Alert{ObjType: "pool", ObjName: "web", ThrottleCount: 2, Events: []events.Record{{EventID: "SERVER_DOWN"}, {EventID: "SERVER_DOWN"}}}
	if got := r.Summarize(a); got != "web: 2 x SERVER_DOWN, 2 throttled" {
		t.Errorf("summary %q", got)
	}
	if got := rule(t, `{"events": ["SERVER_DOWN"]}`).Summarize(a); got != "r: 2 x SERVER_DOWN on pool web" {
		t.Errorf("default summary %q", got)
	}
}

// TestEveryConditionVariableResolves: each variable a condition may name
// is given by an event's activation, with the value of its declared type.
func TestEveryConditionVariableResolves(t *testing.T) {
	ev := event(t, "SERVER_DOWN", "pool", "web", `{"se_hm_pool_details": {"port": 80}}`)
	ev.Extensions = map[string]any{"region": "eu"}
	vars, err := newEventVars(ev)
	if err != nil {
		t.Fatal(err)
	}
	env, err := Env()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range ConditionVariables {
		ast, iss := env.Compile(v.Name)
		if iss.Err() != nil {
			t.Fatalf("%s: %v", v.Name, iss.Err())
		}
		p, err := env.Program(ast)
		if err != nil {
			t.Fatal(err)
		}
		out, _, err := p.Eval(vars)
		if err != nil {
			t.Errorf("%s: %v", v.Name, err)
			continue
		}
		if got := out.Type().TypeName(); got != v.Type.TypeName() {
			t.Errorf("%s: a %s, declared %s", v.Name, got, v.Type.TypeName())
		}
	}
	m, err := rule(t, `{"events": ["SERVER_DOWN"], "condition": "details.se_hm_pool_details.port == 80 && extensions.region == 'eu' && obj_name == 'web'"}`).Match(ev)
	if err != nil || !m.Raise {
		t.Fatalf("match = %+v, %v", m, err)
	}
}
