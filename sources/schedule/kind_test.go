package schedule

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/config"
)

func TestCompileValid(t *testing.T) {
	for _, spec := range []string{
		`{"cron": "*/5 * * * *", "controlscript": "report"}`,
		`{"cron": "0 */5 * * * *", "controlscript": "report"}`,
		`{"cron": "@every 1s", "publish_event": {"event_id": "TICK"}}`,
		`{"cron": "@daily", "timezone": "Europe/Paris", "controlscript": "report", "missed": "once"}`,
		`{"cron": "30 2 * * MON-FRI", "timezone": "America/New_York", "controlscript": "report", "missed": "catch_up", "catch_up_limit": 3}`,
		`{"cron": "@hourly", "publish_event": {"event_id": "HOURLY", "obj_type": "pool", "obj_name": "web", "details": {"k": 1}}, "enabled": false}`,
	} {
		sc, err := Compile(json.RawMessage(spec))
		if err != nil {
			t.Errorf("%s: %v", spec, err)
			continue
		}
		if sc.Spec.Missed == "" || sc.Location == nil || sc.Spec.Enabled == nil {
			t.Errorf("%s: defaults not filled: %+v", spec, sc.Spec)
		}
	}
	sc, err := Compile(json.RawMessage(`{"cron": "@every 1s", "controlscript": "x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Spec.Missed != MissedSkip || !sc.Enabled() || sc.Spec.Timezone != "UTC" || sc.Action() != ActionControlScript {
		t.Errorf("defaults: %+v", sc.Spec)
	}
}

func TestCompileRefuses(t *testing.T) {
	for _, c := range []struct{ spec, field, msg string }{
		{`{"controlscript": "x"}`, "spec.cron", "required"},
		{`{"cron": "61 * * * *", "controlscript": "x"}`, "spec.cron", "61"},
		{`{"cron": "not a cron", "controlscript": "x"}`, "spec.cron", ""},
		{`{"cron": "* * * * * * *", "controlscript": "x"}`, "spec.cron", ""},
		{`{"cron": "@fortnightly", "controlscript": "x"}`, "spec.cron", ""},
		{`{"cron": "0 0 30 2 *", "controlscript": "x"}`, "spec.cron", "never"},
		{`{"cron": "CRON_TZ=Europe/Paris * * * * *", "controlscript": "x"}`, "spec.cron", "spec.timezone"},
		{`{"cron": "* * * * *", "timezone": "Mars/Olympus_Mons", "controlscript": "x"}`, "spec.timezone", "Mars"},
		{`{"cron": "* * * * *", "timezone": "Local", "controlscript": "x"}`, "spec.timezone", ""},
		{`{"cron": "* * * * *", "controlscript": "x", "publish_event": {"event_id": "TICK"}}`, "spec", "both"},
		{`{"cron": "* * * * *"}`, "spec", "no action"},
		{`{"cron": "* * * * *", "controlscript": "bad name!"}`, "spec.controlscript", ""},
		{`{"cron": "* * * * *", "publish_event": {"event_id": "lower"}}`, "spec.publish_event.event_id", ""},
		{`{"cron": "* * * * *", "publish_event": {}}`, "spec.publish_event.event_id", ""},
		{`{"cron": "* * * * *", "controlscript": "x", "missed": "sometimes"}`, "spec.missed", "sometimes"},
		{`{"cron": "* * * * *", "controlscript": "x", "missed": "catch_up"}`, "spec.catch_up_limit", "required"},
		{`{"cron": "* * * * *", "controlscript": "x", "missed": "catch_up", "catch_up_limit": -1}`, "spec.catch_up_limit", "-1"},
		{`{"cron": "* * * * *", "controlscript": "x", "missed": "catch_up", "catch_up_limit": 0}`, "spec.catch_up_limit", ""},
		{`{"cron": "* * * * *", "controlscript": "x", "missed": "catch_up", "catch_up_limit": 100000}`, "spec.catch_up_limit", ""},
		{`{"cron": "* * * * *", "controlscript": "x", "catch_up_limit": 3}`, "spec.catch_up_limit", "only"},
		{`{"cron": "* * * * *", "controlscript": "x", "enabled": "yes"}`, "spec.enabled", ""},
		{`{"cron": "* * * * *", "controlscript": "x", "every": "1s"}`, "spec.every", "unknown"},
	} {
		_, err := Compile(json.RawMessage(c.spec))
		var fe *config.FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%s: want a field error, got %v", c.spec, err)
			continue
		}
		if fe.Field != c.field || !strings.Contains(fe.Message, c.msg) {
			t.Errorf("%s: got %s: %s, want field %s with %q", c.spec, fe.Field, fe.Message, c.field, c.msg)
		}
	}
}

// TestKindRegistered: the store's registry refuses a bad Schedule naming
// the object and the field.
func TestKindRegistered(t *testing.T) {
	obj := &config.Object{Kind: "schedule", Name: "nightly", Spec: json.RawMessage(`{"cron": "* * * * *", "timezone": "Nowhere/Land", "controlscript": "x"}`)}
	err := config.Kinds.Validate(obj)
	var fe *config.FieldError
	if !errors.As(err, &fe) || fe.Object != "Schedule/nightly" || fe.Field != "spec.timezone" {
		t.Fatalf("got %v", err)
	}
}
