package controller

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/events"
)

// knownRoutes is every route the API should have, with its auth class and
// perm. A route missing here, or listed here and missing from the API, fails
// TestRouteAuthClasses.
var knownRoutes = map[string]struct {
	auth AuthClass
	perm Perm
}{
	"GET /healthz":                           {AuthPublic, PermNone},
	"GET /readyz":                            {AuthPublic, PermNone},
	"GET /metrics":                           {AuthToken, PermRead},
	"GET /api/v1/openapi.json":               {AuthToken, PermRead},
	"GET /api/v1/kinds":                      {AuthToken, PermRead},
	"GET /api/v1/objects/{kind}":             {AuthToken, PermObjectRead},
	"GET /api/v1/objects/{kind}/{name}":      {AuthToken, PermObjectRead},
	"PUT /api/v1/objects/{kind}/{name}":      {AuthToken, PermObjectWrite},
	"DELETE /api/v1/objects/{kind}/{name}":   {AuthToken, PermObjectWrite},
	"POST /api/v1/apply":                     {AuthToken, PermObjectWrite},
	"POST /api/v1/delete":                    {AuthToken, PermObjectWrite},
	"POST /api/v1/events":                    {AuthToken, PermPublish},
	"GET /api/v1/events":                     {AuthToken, PermRead},
	"GET /api/v1/events/stream":              {AuthToken, PermRead},
	"GET /api/v1/events/rejected":            {AuthToken, PermRead},
	"GET /api/v1/whoami":                     {AuthToken, PermRead},
	"POST /api/v1/tokens":                    {AuthToken, PermAdmin},
	"GET /api/v1/tokens":                     {AuthToken, PermPrivilegedRead},
	"DELETE /api/v1/tokens/{name}":           {AuthToken, PermAdmin},
	"POST /api/v1/controlscripts/{name}/run": {AuthToken, PermRun},
	"GET /api/v1/executions":                 {AuthToken, PermRead},
	"GET /api/v1/executions/{id}":            {AuthToken, PermRead},
	"GET /api/v1/executions/{id}/logs":       {AuthToken, PermRead},
	"POST /api/v1/executions/{id}/cancel":    {AuthToken, PermRun},
	"GET /api/v1/alerts":                     {AuthToken, PermRead},
	"GET /api/v1/alerts/{id}":                {AuthToken, PermRead},
	"POST /api/v1/alerts/{id}/dismiss":       {AuthToken, PermWrite},
	"POST /api/v1/alerts/test":               {AuthToken, PermPublish},
	"GET /api/v1/deadletters":                {AuthToken, PermRead},
	"POST /api/v1/deadletters/{seq}/replay":  {AuthToken, PermRun},
	"POST /hooks/{name}":                     {AuthReceiver, PermNone},
	"OPTIONS /hooks/{name}":                  {AuthReceiver, PermNone},
}

// concretePath fills a route's wildcards with values that exist in the
// test store, so that an allowed request gets past routing and auth.
func concretePath(pattern string) string {
	return strings.NewReplacer("{kind}", "pool", "{name}", "web", "{id}", "exec-1").Replace(pattern)
}

// TestRouteAuthClasses walks the API's own route table and proves each
// route's auth class and perm by requests.
func TestRouteAuthClasses(t *testing.T) {
	e := newEnv(t)
	// An allowed stream request ends at once instead of following forever.
	e.bus.followFn = func(context.Context, events.Filter, func(events.Stored) error) error { return nil }
	routes := e.api.Routes()
	if len(routes) == 0 {
		t.Fatal("no routes")
	}
	seen := map[string]bool{}
	for _, rt := range routes {
		key := rt.MuxPattern()
		if seen[key] {
			t.Errorf("route %s registered twice", key)
		}
		seen[key] = true
		want, ok := knownRoutes[key]
		if !ok {
			t.Errorf("route %s (auth %s, perm %q) is missing from knownRoutes: add it with its expected class and perm", key, rt.Auth, rt.Perm)
			continue
		}
		if rt.Auth != want.auth || rt.Perm != want.perm {
			t.Errorf("route %s: auth %s perm %q, want auth %s perm %q", key, rt.Auth, rt.Perm, want.auth, want.perm)
		}
		if rt.Summary == "" {
			t.Errorf("route %s has no summary", key)
		}
		path := concretePath(rt.Pattern)
		t.Run(key, func(t *testing.T) {
			switch rt.Auth {
			case AuthPublic, AuthReceiver:
				resp, body := e.do(t, rt.Method, path, "", nil)
				if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
					t.Errorf("without a token: status %d, want neither 401 nor 403; body %s", resp.StatusCode, body)
				}
			case AuthToken:
				resp, body := e.do(t, rt.Method, path, "", nil)
				wantErr(t, resp, body, http.StatusUnauthorized, CodeUnauthorized)
				resp, body = e.do(t, rt.Method, path, "vgl_notatoken", nil)
				wantErr(t, resp, body, http.StatusUnauthorized, CodeUnauthorized)
				resp, body = e.do(t, rt.Method, path, "", nil, "Authorization", "Basic "+e.tokens[RoleAdmin])
				wantErr(t, resp, body, http.StatusUnauthorized, CodeUnauthorized)
				resp, body = e.do(t, rt.Method, path, e.expired, nil)
				if got := wantErr(t, resp, body, http.StatusUnauthorized, CodeUnauthorized); got.Message != "token expired" {
					t.Errorf("expired token: message %q, want %q", got.Message, "token expired")
				}
				for _, role := range Roles {
					resp, body := e.do(t, rt.Method, path, e.tokens[role], nil)
					switch {
					case !Allowed(role, rt.Perm):
						wantErr(t, resp, body, http.StatusForbidden, CodeForbidden)
					case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
						t.Errorf("role %s: status %d, want the route to serve it; body %s", role, resp.StatusCode, body)
					}
				}
				if rt.Method != http.MethodGet {
					// Every route that writes is closed to viewers.
					resp, body := e.do(t, rt.Method, path, e.tokens[RoleViewer], nil)
					wantErr(t, resp, body, http.StatusForbidden, CodeForbidden)
				}
			default:
				t.Errorf("unknown auth class %q", rt.Auth)
			}
		})
	}
	for key := range knownRoutes {
		if !seen[key] {
			t.Errorf("knownRoutes lists %s, which the API does not serve", key)
		}
	}
}

func TestMetricsPublic(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MetricsPublic = true })
	for _, rt := range e.api.Routes() {
		if rt.Pattern == "/metrics" && (rt.Auth != AuthPublic || rt.Perm != PermNone) {
			t.Errorf("/metrics with MetricsPublic: auth %s perm %q, want public", rt.Auth, rt.Perm)
		}
	}
	resp, body := e.do(t, "GET", "/metrics", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics without a token: %d %s", resp.StatusCode, body)
	}
}

// TestRoleMatrix checks Allowed against the role table of docs/api.md.
func TestRoleMatrix(t *testing.T) {
	all := []Perm{PermRead, PermSensitiveRead, PermPrivilegedRead, PermWrite, PermPublish, PermSensitiveWrite, PermAdmin, PermRun}
	want := map[Role][]Perm{
		RoleViewer:   {PermRead, PermSensitiveRead},
		RoleScript:   {PermRead, PermWrite, PermPublish, PermRun},
		RoleOperator: {PermRead, PermSensitiveRead, PermPrivilegedRead, PermWrite, PermPublish, PermSensitiveWrite, PermRun},
		RoleAdmin:    all,
	}
	for _, role := range Roles {
		for _, p := range all {
			allowed := false
			for _, w := range want[role] {
				allowed = allowed || w == p
			}
			if got := Allowed(role, p); got != allowed {
				t.Errorf("Allowed(%s, %s) = %v, want %v", role, p, got, allowed)
			}
		}
	}
	if Allowed(Role("root"), PermRead) {
		t.Error("an unknown role is allowed to read")
	}
	for _, k := range []struct {
		kind        config.Kind
		read, write Perm
	}{
		{config.Kind{Name: "Pool"}, PermRead, PermWrite},
		{config.Kind{Name: "Secret", Sensitive: true}, PermSensitiveRead, PermSensitiveWrite},
		{tokenKind, PermPrivilegedRead, PermAdmin},
		{config.Kind{Name: "Policy", AdminOnly: true}, PermRead, PermAdmin},
	} {
		if got := ObjectPerm(&k.kind, false); got != k.read {
			t.Errorf("ObjectPerm(%s, read) = %s, want %s", k.kind.Name, got, k.read)
		}
		if got := ObjectPerm(&k.kind, true); got != k.write {
			t.Errorf("ObjectPerm(%s, write) = %s, want %s", k.kind.Name, got, k.write)
		}
	}
	for _, s := range []string{"admin", "Operator", "viewer", "script"} {
		if _, err := ParseRole(s); err != nil {
			t.Errorf("ParseRole(%q): %v", s, err)
		}
	}
	if _, err := ParseRole("root"); err == nil {
		t.Error("ParseRole(root) succeeded")
	}
}

// TestSensitiveKinds runs the role matrix for Secrets and Tokens through
// the object routes.
func TestSensitiveKinds(t *testing.T) {
	e := newEnv(t)
	if _, err := e.store.Apply(context.Background(), []*config.Object{
		{Kind: "Secret", Name: "db", Spec: json.RawMessage(`{"data":{"password":"hunter2"}}`)},
		{Kind: "Pool", Name: "web", Spec: json.RawMessage(`{"servers":["10.0.0.1"]}`)},
	}, config.ApplyOptions{User: "test"}); err != nil {
		t.Fatal(err)
	}
	secret := map[string]any{"spec": map[string]any{"data": map[string]string{"password": "s3cret"}}}
	pool := map[string]any{"spec": map[string]any{"servers": []string{"10.0.0.2"}}}
	token := map[string]any{"spec": map[string]any{"role": "admin", "hash": strings.Repeat("a", 64)}}
	applySecret := map[string]any{"objects": []any{map[string]any{"kind": "secret", "name": "x", "spec": secret["spec"]}}}
	deleteSecret := map[string]any{"objects": []any{map[string]any{"kind": "Secret", "name": "x"}}}
	deleteToken := map[string]any{"objects": []any{map[string]any{"kind": "Token", "name": "t-viewer"}}}

	type req struct {
		method, path string
		body         any
	}
	reqs := map[string]req{
		"list secrets":       {"GET", "/api/v1/objects/secrets", nil},
		"get secret":         {"GET", "/api/v1/objects/Secret/db", nil},
		"put secret":         {"PUT", "/api/v1/objects/secret/s2", secret},
		"apply secret":       {"POST", "/api/v1/apply?", applySecret},
		"delete secret":      {"POST", "/api/v1/delete", deleteSecret},
		"list tokens (obj)":  {"GET", "/api/v1/objects/token", nil},
		"get token (obj)":    {"GET", "/api/v1/objects/token/t-admin", nil},
		"put token (obj)":    {"PUT", "/api/v1/objects/token/t-new", token},
		"delete token (obj)": {"POST", "/api/v1/delete", deleteToken},
		"list tokens":        {"GET", "/api/v1/tokens", nil},
		"create token":       {"POST", "/api/v1/tokens", map[string]any{"role": "viewer"}},
		"put pool":           {"PUT", "/api/v1/objects/pool/p2", pool},
		"put policy":         {"PUT", "/api/v1/objects/policy/p1", map[string]any{"spec": map[string]any{}}},
		"get policy":         {"GET", "/api/v1/objects/policy", nil},
	}
	// want[role][request] is the status; 400 for Token writes by admins is
	// the Internal kind refusing the objects API.
	want := map[Role]map[string]int{
		RoleScript: {
			"list secrets": 403, "get secret": 403, "put secret": 403, "apply secret": 403, "delete secret": 403,
			"list tokens (obj)": 403, "get token (obj)": 403, "put token (obj)": 403, "delete token (obj)": 403,
			"list tokens": 403, "create token": 403, "put pool": 201, "put policy": 403, "get policy": 200,
		},
		RoleViewer: {
			"list secrets": 200, "get secret": 200, "put secret": 403, "apply secret": 403, "delete secret": 403,
			"list tokens (obj)": 403, "get token (obj)": 403, "put token (obj)": 403, "delete token (obj)": 403,
			"list tokens": 403, "create token": 403, "put pool": 403, "put policy": 403, "get policy": 200,
		},
		RoleOperator: {
			"list secrets": 200, "get secret": 200, "put secret": 201, "apply secret": 200, "delete secret": 200,
			"list tokens (obj)": 200, "get token (obj)": 200, "put token (obj)": 403, "delete token (obj)": 403,
			"list tokens": 200, "create token": 403, "put pool": 200, "put policy": 403, "get policy": 200,
		},
		RoleAdmin: {
			"list secrets": 200, "get secret": 200, "put secret": 200, "apply secret": 200, "delete secret": 200,
			"list tokens (obj)": 200, "get token (obj)": 200, "put token (obj)": 400, "delete token (obj)": 400,
			"list tokens": 200, "create token": 201, "put pool": 200, "put policy": 201, "get policy": 200,
		},
	}
	// The order matters for writes (operator creates, admin then updates).
	for _, role := range []Role{RoleScript, RoleViewer, RoleOperator, RoleAdmin} {
		for _, name := range []string{
			"list secrets", "get secret", "put secret", "apply secret", "delete secret",
			"list tokens (obj)", "get token (obj)", "put token (obj)", "delete token (obj)", "list tokens",
			"create token", "put pool", "put policy", "get policy",
		} {
			r := reqs[name]
			resp, body := e.do(t, r.method, r.path, e.tokens[role], r.body)
			if resp.StatusCode != want[role][name] {
				t.Errorf("%s: %s: status %d, want %d; body %s", role, name, resp.StatusCode, want[role][name], body)
			}
			if resp.StatusCode >= 400 {
				apiErr(t, resp, body)
			}
			if strings.Contains(string(body), "hunter2") || strings.Contains(string(body), "s3cret") {
				t.Errorf("%s: %s: answer shows a secret value: %s", role, name, body)
			}
			if strings.Contains(string(body), `"hash"`) {
				t.Errorf("%s: %s: answer shows a token hash: %s", role, name, body)
			}
		}
	}
	if o, err := e.store.Get(context.Background(), "Pool", "p2"); err != nil || o.Metadata.UpdatedBy != "t-admin" {
		t.Errorf("Pool/p2 updated_by: %+v, %v; want t-admin", o, err)
	}
}

// statusFunc is an ObjectStatus from a function.
type statusFunc func(kind, name string) (any, bool)

func (f statusFunc) ObjectStatus(kind, name string) (any, bool) { return f(kind, name) }

// TestObjectStatus: reads show the run-time status of the objects that
// have one, in the list and alone; others have none.
func TestObjectStatus(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Status = statusFunc(func(kind, name string) (any, bool) {
			if kind == "Pool" && name == "web" {
				return map[string]string{"next_run": "soon"}, true
			}
			return nil, false
		})
	})
	if _, err := e.store.Apply(context.Background(), []*config.Object{
		{Kind: "Pool", Name: "web", Spec: json.RawMessage(`{"servers":["10.0.0.1"]}`)},
		{Kind: "Pool", Name: "other", Spec: json.RawMessage(`{"servers":["10.0.0.2"]}`)},
	}, config.ApplyOptions{User: "test"}); err != nil {
		t.Fatal(err)
	}
	_, body := e.do(t, "GET", "/api/v1/objects/Pool/web", e.tokens[RoleViewer], nil)
	var one struct {
		Status map[string]string `json:"status"`
	}
	if err := json.Unmarshal(body, &one); err != nil || one.Status["next_run"] != "soon" {
		t.Fatalf("get: %v %s", err, body)
	}
	_, body = e.do(t, "GET", "/api/v1/objects/Pool", e.tokens[RoleViewer], nil)
	var list struct {
		Items []struct {
			Name   string         `json:"name"`
			Status map[string]any `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &list); err != nil || len(list.Items) != 2 {
		t.Fatalf("list: %v %s", err, body)
	}
	for _, it := range list.Items {
		if (it.Name == "web") != (it.Status != nil) {
			t.Fatalf("list: %s has status %v", it.Name, it.Status)
		}
	}
}
