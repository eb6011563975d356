package controller

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// TestOpenAPI checks that the served document is valid JSON, lists every
// route of the table with its security, and resolves every $ref.
func TestOpenAPI(t *testing.T) {
	e := newEnv(t)
	resp, body := e.do(t, "GET", "/api/v1/openapi.json", e.tokens[RoleViewer], nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("openapi: %d %v", resp.StatusCode, resp.Header)
	}
	var doc struct {
		OpenAPI    string                               `json:"openapi"`
		Paths      map[string]map[string]map[string]any `json:"paths"`
		Components struct {
			Schemas         map[string]any `json:"schemas"`
			SecuritySchemes map[string]any `json:"securitySchemes"`
		} `json:"components"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi version %q", doc.OpenAPI)
	}
	for _, name := range []string{"Object", "Error", "Event", "Result"} {
		if doc.Components.Schemas[name] == nil {
			t.Errorf("no component schema %s", name)
		}
	}
	if doc.Components.SecuritySchemes["bearer"] == nil {
		t.Error("no bearer security scheme")
	}
	ops := 0
	for _, p := range doc.Paths {
		ops += len(p)
	}
	if ops != len(e.api.Routes()) {
		t.Errorf("%d operations for %d routes", ops, len(e.api.Routes()))
	}
	for _, rt := range e.api.Routes() {
		op := doc.Paths[rt.Pattern][strings.ToLower(rt.Method)]
		if op == nil {
			t.Errorf("route %s is not in the document", rt.MuxPattern())
			continue
		}
		sec, _ := op["security"].([]any)
		if (rt.Auth == AuthToken) != (len(sec) == 1) {
			t.Errorf("%s: security %v for auth class %s", rt.MuxPattern(), op["security"], rt.Auth)
		}
		if op["x-vigil-auth"] != string(rt.Auth) || op["summary"] != rt.Summary {
			t.Errorf("%s: x-vigil-auth %v summary %v", rt.MuxPattern(), op["x-vigil-auth"], op["summary"])
		}
		for _, seg := range strings.Split(rt.Pattern, "/") {
			if strings.HasPrefix(seg, "{") && !hasParam(op, strings.Trim(seg, "{}")) {
				t.Errorf("%s: no path parameter %s", rt.MuxPattern(), seg)
			}
		}
	}
	// Every $ref resolves.
	var all any
	_ = json.Unmarshal(body, &all)
	walkRefs(all, func(ref string) {
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		if doc.Components.Schemas[name] == nil {
			t.Errorf("dangling $ref %s", ref)
		}
	})
}

func hasParam(op map[string]any, name string) bool {
	params, _ := op["parameters"].([]any)
	for _, p := range params {
		if m, ok := p.(map[string]any); ok && m["name"] == name && m["in"] == "path" {
			return true
		}
	}
	return false
}

func walkRefs(v any, fn func(string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			if s, ok := c.(string); ok && k == "$ref" {
				fn(s)
			}
			walkRefs(c, fn)
		}
	case []any:
		for _, c := range x {
			walkRefs(c, fn)
		}
	}
}

// TestMetrics checks that requests are counted by route pattern, never by
// raw path.
func TestMetrics(t *testing.T) {
	e := newEnv(t)
	e.do(t, "GET", "/api/v1/objects/pool/a", e.tokens[RoleViewer], nil)
	e.do(t, "GET", "/api/v1/objects/pool/b", e.tokens[RoleViewer], nil)
	e.do(t, "GET", "/no/such/path", "", nil)
	e.do(t, "GET", "/api/v1/kinds", "", nil)

	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	var sawHistogram bool
	for _, mf := range mfs {
		switch mf.GetName() {
		case "vigil_api_requests_total":
			for _, m := range mf.GetMetric() {
				counts[labels(m)] += m.GetCounter().GetValue()
			}
		case "vigil_api_request_duration_seconds":
			sawHistogram = len(mf.GetMetric()) > 0
		}
	}
	want := map[string]float64{
		"GET /api/v1/objects/{kind}/{name} 404": 2,
		"unmatched 404":                         1,
		"GET /api/v1/kinds 401":                 1,
	}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("requests_total{%s} = %v, want %v (all: %v)", k, counts[k], v, counts)
		}
	}
	for k := range counts {
		if strings.Contains(k, "/pool/") || strings.Contains(k, "/no/such") {
			t.Errorf("raw path in a route label: %s", k)
		}
	}
	if !sawHistogram {
		t.Error("no request duration histogram")
	}
	resp, body := e.do(t, "GET", "/metrics", e.tokens[RoleViewer], nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "vigil_api_requests_total") {
		t.Errorf("/metrics: %d %.200s", resp.StatusCode, body)
	}
}

func labels(m *dto.Metric) string {
	var route, code string
	for _, l := range m.GetLabel() {
		switch l.GetName() {
		case "route":
			route = l.GetValue()
		case "code":
			code = l.GetValue()
		}
	}
	return route + " " + code
}

// TestHealthz checks the public probes and the version.
func TestHealthz(t *testing.T) {
	e := newEnv(t)
	resp, body := e.do(t, "GET", "/healthz", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"version":"test"`) {
		t.Errorf("healthz: %d %s", resp.StatusCode, body)
	}
	resp, body = e.do(t, "POST", "/hooks/github", "", "{}")
	if got := wantErr(t, resp, body, http.StatusNotFound, CodeNotFound); got.Object != "WebhookReceiver/github" {
		t.Errorf("hook without receivers: %s", body)
	}
	var called atomic.Bool
	e2 := newEnv(t, func(o *Options) {
		o.Hooks = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			called.Store(r.PathValue("name") == "github")
			w.WriteHeader(http.StatusAccepted)
		})
	})
	if resp, _ := e2.do(t, "POST", "/hooks/github", "", "{}"); resp.StatusCode != http.StatusAccepted || !called.Load() {
		t.Errorf("hook: %d, called %v", resp.StatusCode, called.Load())
	}
}
