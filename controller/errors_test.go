package controller

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/events"
)

// TestErrorShapes drives every error path and checks the JSON shape,
// status, code, and the object and field it names.
func TestErrorShapes(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[RoleAdmin]
	if _, err := e.store.Apply(context.Background(), []*config.Object{
		{Kind: "Pool", Name: "web", Spec: json.RawMessage(`{"servers":["10.0.0.1"]}`)},
	}, config.ApplyOptions{User: "test"}); err != nil {
		t.Fatal(err)
	}
	pool := func(extra string) string {
		return `{"objects":[{"kind":"Pool","name":"web","spec":{"servers":["a"]}` + extra + `}]}`
	}
	big := func(n int) string { return `{"event_id":"X","pad":"` + strings.Repeat("x", n) + `"}` }
	cases := []struct {
		name          string
		method, path  string
		token         string
		body          any
		status        int
		code          Code
		object, field string
	}{
		{"unknown route", "GET", "/nope", "", nil, 404, CodeNotFound, "", ""},
		{"unknown api route", "GET", "/api/v1/nope", admin, nil, 404, CodeNotFound, "", ""},
		{"unknown route, POST", "POST", "/api/v2/apply", admin, "{}", 404, CodeNotFound, "", ""},
		{"method not allowed", "DELETE", "/api/v1/kinds", admin, nil, 405, CodeMethodNotAllowed, "", ""},
		{"method not allowed, public", "PUT", "/healthz", "", nil, 405, CodeMethodNotAllowed, "", ""},
		{"method not allowed, object", "POST", "/api/v1/objects/pool/web", admin, "{}", 405, CodeMethodNotAllowed, "", ""},
		{"no token", "GET", "/api/v1/kinds", "", nil, 401, CodeUnauthorized, "", ""},
		{"forbidden", "POST", "/api/v1/tokens", e.tokens[RoleOperator], `{"role":"admin"}`, 403, CodeForbidden, "", ""},

		{"event too large", "POST", "/api/v1/events", admin, big(MaxEventBody), 413, CodeTooLarge, "", ""},
		{"object too large", "PUT", "/api/v1/objects/pool/web", admin, `{"spec":{"servers":["` + strings.Repeat("x", MaxObjectBody) + `"]}}`, 413, CodeTooLarge, "", ""},
		{"apply too large", "POST", "/api/v1/apply", admin, pool(`,"x":"` + strings.Repeat("x", MaxObjectBody) + `"`), 413, CodeTooLarge, "", ""},
		{"token too large", "POST", "/api/v1/tokens", admin, `{"role":"viewer","description":"` + strings.Repeat("x", MaxTokenBody) + `"}`, 413, CodeTooLarge, "", ""},

		{"bad JSON", "POST", "/api/v1/apply", admin, `{"objects": [`, 400, CodeBadRequest, "", ""},
		{"empty body", "POST", "/api/v1/apply", admin, ``, 400, CodeBadRequest, "", ""},
		{"trailing data", "POST", "/api/v1/apply", admin, `{"objects": []} {}`, 400, CodeBadRequest, "", ""},
		{"unknown envelope field", "POST", "/api/v1/apply", admin, `{"objects": [], "dryrun": true}`, 400, CodeBadRequest, "", ""},
		{"wrong JSON type", "POST", "/api/v1/apply", admin, `{"objects": {}}`, 400, CodeBadRequest, "", "objects"},
		{"null object", "POST", "/api/v1/apply", admin, `{"objects": [null]}`, 400, CodeBadRequest, "", "objects[0]"},
		{"bad JSON in object", "PUT", "/api/v1/objects/pool/web", admin, `{"spec": }`, 400, CodeBadRequest, "", ""},
		{"bad dry_run", "PUT", "/api/v1/objects/pool/web?dry_run=maybe", admin, `{"spec":{"servers":["a"]}}`, 400, CodeBadRequest, "", "dry_run"},
		{"bad revision", "DELETE", "/api/v1/objects/pool/web?revision=-1", admin, nil, 400, CodeBadRequest, "", "revision"},

		{"invalid object", "PUT", "/api/v1/objects/pool/web", admin, `{"spec":{"servers":[]}}`, 400, CodeInvalidObject, "Pool/web", "spec.servers"},
		{"invalid object in apply", "POST", "/api/v1/apply", admin, `{"objects":[{"kind":"Pool","name":"a","spec":{"servers":["x"]}},{"kind":"Pool","name":"b","spec":{"srv":1}}]}`, 400, CodeInvalidObject, "Pool/b", "spec.srv"},
		{"bad name", "PUT", "/api/v1/objects/pool/bad..name", admin, `{"spec":{"servers":["a"]}}`, 400, CodeInvalidObject, "Pool/bad..name", "name"},
		{"kind disagrees with path", "PUT", "/api/v1/objects/pool/web", admin, `{"kind":"Secret","spec":{"servers":["a"]}}`, 400, CodeInvalidObject, "Pool/web", "kind"},
		{"name disagrees with path", "PUT", "/api/v1/objects/pool/web", admin, `{"name":"db","spec":{"servers":["a"]}}`, 400, CodeInvalidObject, "Pool/web", "name"},
		{"kind missing in apply", "POST", "/api/v1/apply", admin, `{"objects":[{"name":"a","spec":{}}]}`, 400, CodeInvalidObject, "/a", "kind"},
		{"unknown kind in path", "GET", "/api/v1/objects/widget", admin, nil, 400, CodeUnknownKind, "", "kind"},
		{"unknown kind in apply", "POST", "/api/v1/apply", admin, `{"objects":[{"kind":"Widget","name":"a","spec":{}}]}`, 400, CodeUnknownKind, "Widget/a", "kind"},
		{"unknown kind in delete", "POST", "/api/v1/delete", admin, `{"objects":[{"kind":"Widget","name":"a"}]}`, 400, CodeUnknownKind, "Widget/a", "kind"},
		{"object not found", "GET", "/api/v1/objects/pool/nope", admin, nil, 404, CodeNotFound, "Pool/nope", ""},
		{"delete not found", "DELETE", "/api/v1/objects/pool/nope", admin, nil, 404, CodeNotFound, "Pool/nope", ""},
		{"batch delete not found", "POST", "/api/v1/delete", admin, `{"objects":[{"kind":"pool","name":"nope"}]}`, 404, CodeNotFound, "Pool/nope", ""},
		{"token not found", "DELETE", "/api/v1/tokens/nope", admin, nil, 404, CodeNotFound, "", ""},
		{"stale revision", "PUT", "/api/v1/objects/pool/web", admin, `{"spec":{"servers":["a"]},"metadata":{"revision":999}}`, 409, CodeConflict, "Pool/web", ""},
		{"create only", "PUT", "/api/v1/objects/pool/web", admin, `{"spec":{"servers":["a"]},"metadata":{"revision":0}}`, 409, CodeConflict, "Pool/web", ""},
		{"stale delete", "DELETE", "/api/v1/objects/pool/web?revision=999", admin, nil, 409, CodeConflict, "Pool/web", ""},
		{"too many", "POST", "/api/v1/apply", admin, `{"objects":[` + strings.Repeat(`{"kind":"Pool","name":"a","spec":{}},`, config.MaxBatch) + `{"kind":"Pool","name":"a","spec":{}}]}`, 400, CodeBadRequest, "", "objects"},

		{"event without event_id", "POST", "/api/v1/events", admin, `{"obj_type":"pool","obj_name":"web"}`, 400, CodeInvalidEvent, "", ""},
		{"event with lower-case event_id", "POST", "/api/v1/events", admin, `{"event_id":"server_down","obj_type":"pool","obj_name":"web"}`, 400, CodeInvalidEvent, "", "event_id"},
		{"cloudevent with lower-case type", "POST", "/api/v1/events", admin, `{"specversion":"1.0","id":"a","source":"/x","type":"server_down","data":{"event_id":"server_down"}}`, 400, CodeInvalidEvent, "", ""},
		{"event not JSON", "POST", "/api/v1/events", admin, `not json`, 400, CodeInvalidEvent, "", ""},

		{"bad event_id filter", "GET", "/api/v1/events?event_id=server_down", admin, nil, 400, CodeBadRequest, "", "event_id"},
		{"limit 0", "GET", "/api/v1/events?limit=0", admin, nil, 400, CodeBadRequest, "", "limit"},
		{"limit 1001", "GET", "/api/v1/events?limit=1001", admin, nil, 400, CodeBadRequest, "", "limit"},
		{"bad since", "GET", "/api/v1/events?since=yesterday", admin, nil, 400, CodeBadRequest, "", "since"},
		{"negative since", "GET", "/api/v1/events?since=-5m", admin, nil, 400, CodeBadRequest, "", "since"},
		{"bad cursor", "GET", "/api/v1/events?cursor=abc", admin, nil, 400, CodeBadRequest, "", "cursor"},
		{"unknown filter", "GET", "/api/v1/events?evnt_id=X", admin, nil, 400, CodeBadRequest, "", "evnt_id"},
		{"limit on stream", "GET", "/api/v1/events/stream?limit=5", admin, nil, 400, CodeBadRequest, "", "limit"},
		{"bad Last-Event-ID", "GET", "/api/v1/events/stream", admin, nil, 400, CodeBadRequest, "", "Last-Event-ID"},

		{"bad role", "POST", "/api/v1/tokens", admin, `{"role":"root"}`, 400, CodeBadRequest, "", "role"},
		{"bad ttl", "POST", "/api/v1/tokens", admin, `{"role":"viewer","ttl":"soon"}`, 400, CodeBadRequest, "", "ttl"},
		{"bad token name", "POST", "/api/v1/tokens", admin, `{"role":"viewer","name":"a b"}`, 400, CodeBadRequest, "", "name"},
		{"unknown token field", "POST", "/api/v1/tokens", admin, `{"role":"viewer","expires":"2030-01-01T00:00:00Z"}`, 400, CodeBadRequest, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hdr []string
			if c.name == "bad Last-Event-ID" {
				hdr = []string{"Last-Event-ID", "x"}
			}
			resp, body := e.do(t, c.method, c.path, c.token, c.body, hdr...)
			got := wantErr(t, resp, body, c.status, c.code)
			if c.object != "" && got.Object != c.object {
				t.Errorf("object %q, want %q", got.Object, c.object)
			}
			if c.field != "" && !strings.HasSuffix(got.Field, c.field) {
				t.Errorf("field %q, want %q", got.Field, c.field)
			}
			if c.status == 405 && resp.Header.Get("Allow") == "" {
				t.Error("405 without an Allow header")
			}
		})
	}
}

// TestInternalErrorHidden proves that a store failure answers 500 without
// its details, which go to the log under "err".
func TestInternalErrorHidden(t *testing.T) {
	e := newEnv(t)
	e.store.listFn = func(context.Context, string) ([]*config.Object, error) {
		return nil, errors.New("kv: disk on fire at /var/lib/secret-path")
	}
	resp, body := e.do(t, "GET", "/api/v1/objects/pool", e.tokens[RoleViewer], nil)
	got := wantErr(t, resp, body, http.StatusInternalServerError, CodeInternal)
	if strings.Contains(got.Message, "disk on fire") {
		t.Errorf("500 shows the cause: %s", body)
	}
	var found bool
	for _, line := range strings.Split(e.logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if rec["level"] == "ERROR" && rec["component"] == "api" && strings.Contains(rec["err"].(string), "disk on fire") {
			found = true
		}
	}
	if !found {
		t.Errorf("no error log line with the cause under err:\n%s", e.logs.String())
	}
}

// TestBusErrors maps bus failures: a FieldError from Publish is the
// caller's (400), anything else is internal (500); an unready bus makes
// /readyz answer 503.
func TestBusErrors(t *testing.T) {
	e := newEnv(t)
	e.bus.publishFn = func(context.Context, *events.Event) (events.PublishResult, error) {
		return events.PublishResult{}, &events.FieldError{Field: "data", Message: "too big"}
	}
	resp, body := e.do(t, "POST", "/api/v1/events", e.tokens[RoleScript], `{"event_id":"X_Y"}`)
	if got := wantErr(t, resp, body, 400, CodeInvalidEvent); got.Field != "data" {
		t.Errorf("field %q, want data", got.Field)
	}
	e.bus.publishFn = func(context.Context, *events.Event) (events.PublishResult, error) {
		return events.PublishResult{}, errors.New("nats: timeout")
	}
	resp, body = e.do(t, "POST", "/api/v1/events", e.tokens[RoleScript], `{"event_id":"X_Y"}`)
	wantErr(t, resp, body, 500, CodeInternal)

	resp, body = e.do(t, "GET", "/readyz", "", nil)
	if resp.StatusCode != 200 {
		t.Errorf("readyz: %d %s", resp.StatusCode, body)
	}
	e.bus.readyFn = func() error { return errors.New("jetstream: no responders") }
	resp, body = e.do(t, "GET", "/readyz", "", nil)
	wantErr(t, resp, body, 503, CodeUnavailable)
}
