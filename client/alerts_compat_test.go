package client_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/vigilhq/vigil/actions"
	"github.com/vigilhq/vigil/client"
	"github.com/vigilhq/vigil/events"
)

// requireAllSet fails when a field of v, or of a struct, slice element or
// map value inside it, is zero, so that omitempty hides nothing from a
// round trip.
func requireAllSet(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			t.Fatalf("the test leaves %s unset", path)
		}
		requireAllSet(t, v.Elem(), path)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			if v.IsZero() {
				t.Fatalf("the test leaves %s unset", path)
			}
			return
		}
		for i := range v.NumField() {
			requireAllSet(t, v.Field(i), path+"."+v.Type().Field(i).Name)
		}
	case reflect.Slice:
		if v.Len() == 0 {
			t.Fatalf("the test leaves %s empty", path)
		}
		if v.Type().Elem().Kind() != reflect.Uint8 {
			requireAllSet(t, v.Index(0), path+"[0]")
		}
	case reflect.Map:
		if v.Len() == 0 {
			t.Fatalf("the test leaves %s empty", path)
		}
	default:
		if v.IsZero() {
			t.Fatalf("the test leaves %s unset", path)
		}
	}
}

// roundTrip proves that the client's type reads every field of the
// server's JSON and writes it back unchanged.
func roundTrip[C any](t *testing.T, name string, server any) C {
	t.Helper()
	requireAllSet(t, reflect.ValueOf(server), name)
	want, err := json.Marshal(server)
	if err != nil {
		t.Fatal(err)
	}
	var c C
	dec := json.NewDecoder(bytes.NewReader(want))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("the client's %s does not read the server's: %v", name, err)
	}
	got, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the client's %s writes\n%s\nthe server wrote\n%s", name, got, want)
	}
	return c
}

// TestAlertTypesMatchActions keeps the client's alert, test result and
// dead-letter types in step with the rules engine's.
func TestAlertTypesMatchActions(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	outcome := actions.ActionOutcome{
		Key: "act-1", Kind: actions.ActionControlScript, Target: "controlscript", Resolve: true,
		Status: actions.OutcomeFailed, Tries: 2, Error: "exit 3", At: now, Execution: "exec-1", Output: "out\n",
	}
	alert := actions.Alert{
		ID: "alert-1", Config: "web-down", Key: "pool/web", State: actions.StateThrottled, Level: actions.LevelHigh,
		ObjType: "pool", ObjName: "web", ObjUUID: "pool-1", Raised: now, Acted: now, ThrottleCount: 4,
		Events: []events.Record{{
			EventID: "SERVER_DOWN", Module: "HEALTH_MONITOR", ObjType: "pool", ObjName: "web", ObjUUID: "pool-1",
			Tenant: "admin", ReportTimestamp: 1767323045, EventDetails: map[string]json.RawMessage{"b": json.RawMessage(`{"x":1}`), "a": json.RawMessage(`"y"`)},
			DetailsSummary: "server down", EventDescription: "a server went down",
		}},
		Summary: "pool web: 3 x SERVER_DOWN", Actions: []actions.ActionOutcome{outcome}, ActionScriptOutput: "restarted\n",
	}
	roundTrip[client.Alert](t, "Alert", alert)
	roundTrip[client.TestResult](t, "TestResult", actions.TestResult{
		Config: "web-down", Matched: true, Reason: "why not", Key: "pool/web", Outcome: "raise",
		Alert: &alert, Actions: []actions.ActionOutcome{outcome},
	})
	dl := roundTrip[client.DeadLetter](t, "DeadLetter", actions.DeadLetter{
		Seq: 7, Error: "HTTP 500", Status: 500, Tries: 5, At: now,
		Request: actions.ActionRequest{
			Key: "act-2", Kind: actions.ActionWebhook, Index: 1, Group: "oncall", Config: "web-down", GroupKey: "pool/web",
			ObjType: "pool", Resolve: true, Created: now, Replays: 1, Hops: 2,
			Notice: actions.Notice{
				ID: "alert-1", Key: "act-2", Config: "web-down", State: actions.StateOn, Summary: "s", Time: now,
				Alert: actions.AviAlert{
					Name: "n", Level: "ALERT_HIGH", Reason: "threshold_exceeded", ObjName: "web", ObjUUID: "pool-1",
					Threshold: 3, ThrottleCount: 1, Events: []actions.AviAlertEvent{{
						EventID: "SERVER_DOWN", ObjUUID: "pool-1", ObjName: "web", ReportTimestamp: 1,
						EventDetails: map[string]json.RawMessage{"k": json.RawMessage(`1`)},
					}},
				},
			},
		},
	})

	for _, st := range []struct{ client, actions string }{
		{client.AlertOn, actions.StateOn},
		{client.AlertThrottled, actions.StateThrottled},
		{client.AlertResolved, actions.StateResolved},
		{client.AlertDismissed, actions.StateDismissed},
	} {
		if st.client != st.actions {
			t.Errorf("client state %q, actions says %q", st.client, st.actions)
		}
	}
	for _, st := range []struct{ client, actions string }{
		{client.OutcomeQueued, actions.OutcomeQueued},
		{client.OutcomeDelivered, actions.OutcomeDelivered},
		{client.OutcomeRetrying, actions.OutcomeRetrying},
		{client.OutcomeDead, actions.OutcomeDead},
		{client.OutcomeFailed, actions.OutcomeFailed},
	} {
		if st.client != st.actions {
			t.Errorf("client outcome %q, actions says %q", st.client, st.actions)
		}
	}
	for _, kind := range []string{actions.ActionWebhook, actions.ActionSyslog, actions.ActionSlack, actions.ActionControlScript} {
		q := actions.ActionRequest{Kind: kind, Index: 2}
		cq := client.ActionRequest{Kind: kind, Index: 2}
		if cq.Target() != q.Target() {
			t.Errorf("Target of %s: client %q, actions %q", kind, cq.Target(), q.Target())
		}
	}
	if dl.Request.Target() != "webhooks[1]" {
		t.Errorf("dead letter target %q", dl.Request.Target())
	}
}
