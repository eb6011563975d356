package actions

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/config"
)

func TestAlertConfigAccepts(t *testing.T) {
	for name, spec := range map[string]string{
		"minimal":  `{"events": ["SERVER_DOWN"]}`,
		"avi-like": `{"events": ["SERVER_DOWN"], "obj_type": "pool", "obj_name": "web-*", "category": "rolling_window", "threshold": 3, "window": "60s", "throttle": 600, "resolve_events": ["SERVER_UP"], "expiry": "24h", "level": "high", "summary": "{{.ObjName}}: {{len .Events}} x {{.EventID}} (throttled {{.ThrottleCount}})", "action_group": "page-oncall"}`,
		"cel":      `{"events": ["SERVER_DOWN"], "condition": "obj_name.startsWith('web') && details['se_hm_pool_details']['percent_servers_up'] < 50 && time > timestamp('2020-01-01T00:00:00Z')", "group_by": ["obj_name", "details['se_hm_pool_details']['server']", "report_timestamp % 60"]}`,
		"custom":   `{"events": ["MY_APP_DOWN"], "custom_events": ["MY_APP_DOWN", "MY_APP_UP"], "resolve_events": ["MY_APP_UP"]}`,
		"mode":     `{"events": ["SERVER_DOWN"], "mode": {"once_within": "5m"}}`,
		"accum":    `{"events": ["SERVER_DOWN"], "category": "rolling_window", "threshold": 3, "mode": {"accumulate_within": "10m"}}`,
	} {
		if _, err := DecodeAlertConfig(json.RawMessage(spec)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestAlertConfigRefuses: every bad spec is refused naming the field, with
// the line and column for CEL.
func TestAlertConfigRefuses(t *testing.T) {
	for _, c := range []struct {
		name, spec, field, msg string
	}{
		{"no events", `{}`, "spec.events", "required"},
		{"typo", `{"events": ["SERVR_DOWN"]}`, "spec.events[0]", "did you mean SERVER_DOWN?"},
		{"undeclared custom", `{"events": ["MY_APP_DOWN"]}`, "spec.events[0]", "spec.custom_events"},
		{"custom in catalogue", `{"events": ["SERVER_DOWN"], "custom_events": ["SERVER_DOWN"]}`, "spec.custom_events[0]", "in the catalogue"},
		{"custom unused", `{"events": ["SERVER_DOWN"], "custom_events": ["MY_X"]}`, "spec.custom_events[0]", "neither raises nor resolves"},
		{"bad custom id", `{"events": ["SERVER_DOWN"], "custom_events": ["my-x"]}`, "spec.custom_events[0]", "not an event id"},
		{"resolve typo", `{"events": ["SERVER_DOWN"], "resolve_events": ["SERVER_UPP"]}`, "spec.resolve_events[0]", "SERVER_UP"},
		{"resolve raises", `{"events": ["SERVER_DOWN"], "resolve_events": ["SERVER_DOWN"]}`, "spec.resolve_events[0]", "also raises"},
		{"cel syntax", `{"events": ["SERVER_DOWN"], "condition": "obj_name ==\n  'web' &&"}`, "spec.condition", "line 2, column"},
		{"cel unknown variable", `{"events": ["SERVER_DOWN"], "condition": "obj_nme == 'web'"}`, "spec.condition", "undeclared reference to 'obj_nme'"},
		{"cel type", `{"events": ["SERVER_DOWN"], "condition": "obj_name > 3"}`, "spec.condition", "line 1, column 10"},
		{"cel not bool", `{"events": ["SERVER_DOWN"], "condition": "obj_name"}`, "spec.condition", "want bool"},
		{"group_by list", `{"events": ["SERVER_DOWN"], "group_by": ["obj_name", "[1, 2]"]}`, "spec.group_by[1]", "want a string"},
		{"bad glob", `{"events": ["SERVER_DOWN"], "obj_name": "web-["}`, "spec.obj_name", "bad glob"},
		{"category", `{"events": ["SERVER_DOWN"], "category": "sliding"}`, "spec.category", "realtime or rolling_window"},
		{"threshold realtime", `{"events": ["SERVER_DOWN"], "threshold": 3}`, "spec.threshold", "rolling_window only"},
		{"window", `{"events": ["SERVER_DOWN"], "category": "rolling_window", "window": "200h"}`, "spec.window", "at most 168h"},
		{"window type", `{"events": ["SERVER_DOWN"], "category": "rolling_window", "window": "soon"}`, "spec.window", ""},
		{"two modes", `{"events": ["SERVER_DOWN"], "mode": {"once_within": "5m", "once_after": "5m"}}`, "spec.mode", "exactly one"},
		{"mode and throttle", `{"events": ["SERVER_DOWN"], "mode": {"once_within": "5m"}, "throttle": "1m"}`, "spec.throttle", "throttles by itself"},
		{"accumulate and window", `{"events": ["SERVER_DOWN"], "category": "rolling_window", "threshold": 3, "window": "1m", "mode": {"accumulate_within": "5m"}}`, "spec.window", "first match"},
		{"level", `{"events": ["SERVER_DOWN"], "level": "critical"}`, "spec.level", "low, medium or high"},
		{"template syntax", `{"events": ["SERVER_DOWN"], "summary": "{{.ObjName"}`, "spec.summary", "unclosed action"},
		{"template field", `{"events": ["SERVER_DOWN"], "summary": "{{.Pool}} down"}`, "spec.summary", "can't evaluate field Pool"},
		{"action group name", `{"events": ["SERVER_DOWN"], "action_group": "Bad Name"}`, "spec.action_group", ""},
		{"unknown field", `{"events": ["SERVER_DOWN"], "treshold": 3}`, "spec.treshold", ""},
	} {
		assertRefused(t, c.name, c.field, c.msg, func() error {
			_, err := DecodeAlertConfig(json.RawMessage(c.spec))
			return err
		})
	}
}

// assertRefused checks that decode fails with a field error on field whose
// text holds msg.
func assertRefused(t *testing.T, name, field, msg string, decode func() error) {
	t.Helper()
	err := decode()
	var fe *config.FieldError
	if !errors.As(err, &fe) {
		t.Errorf("%s: %v, want a field error on %s", name, err, field)
		return
	}
	if fe.Field != field || !strings.Contains(err.Error(), msg) {
		t.Errorf("%s: %q (field %s), want field %s and %q", name, err, fe.Field, field, msg)
	}
}

// TestAlertConfigKindRegistered: apply goes through the same validation.
func TestAlertConfigKindRegistered(t *testing.T) {
	k, ok := config.Kinds.Lookup(KindAlertConfig)
	if !ok {
		t.Fatal("AlertConfig is not a registered kind")
	}
	if err := k.Validate(json.RawMessage(`{"events": ["SERVER_DOWN"], "condition": "obj_nme == 'x'"}`)); err == nil {
		t.Error("the kind's Validate accepted an invalid condition")
	}
}
