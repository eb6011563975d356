package controller

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/runner"
)

func TestExecutionTokens(t *testing.T) {
	status := map[string]string{"exec-run": runner.StatusRunning, "exec-done": runner.StatusSucceeded}
	e := newEnv(t, func(o *Options) { o.ExecTokenKey = []byte("0123456789abcdef0123456789abcdef") })
	e.runner.getFn = func(_ context.Context, id string) (*runner.Execution, error) {
		st, ok := status[id]
		if !ok {
			return nil, runner.ErrNotFound
		}
		return &runner.Execution{ID: id, Status: st}, nil
	}
	// Signatures may hold '_', the separator: many ids check that the
	// split is by length.
	for i := range 200 {
		id := "exec-" + strings.Repeat("x", i%7) + string(rune('a'+i%26))
		status[id] = runner.StatusRunning
		if resp, body := e.do(t, "GET", "/api/v1/whoami", e.api.ExecutionToken(id), nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("token of %s: %d %s", id, resp.StatusCode, body)
		}
	}
	tok := e.api.ExecutionToken("exec-run")
	if !strings.HasPrefix(tok, ExecTokenPrefix+"exec-run_") {
		t.Fatalf("token %q", tok)
	}
	resp, body := e.do(t, "GET", "/api/v1/whoami", tok, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"role":"script"`) || !strings.Contains(string(body), `"name":"exec-run"`) {
		t.Fatalf("running execution's token: %d %s", resp.StatusCode, body)
	}
	// The script role: no Secrets.
	resp, body = e.do(t, "GET", "/api/v1/objects/Secret", tok, nil)
	wantErr(t, resp, body, http.StatusForbidden, CodeForbidden)

	for name, bad := range map[string]string{
		"ended execution":    e.api.ExecutionToken("exec-done"),
		"unknown execution":  e.api.ExecutionToken("exec-nope"),
		"forged signature":   ExecTokenPrefix + "exec-run_" + strings.Repeat("A", 43),
		"other id, same sig": strings.Replace(tok, "exec-run", "exec-done", 1),
		"no signature":       ExecTokenPrefix + "exec-run",
	} {
		resp, body := e.do(t, "GET", "/api/v1/whoami", bad, nil)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: %d %s", name, resp.StatusCode, body)
		}
	}
	// Another key makes other tokens.
	e2 := newEnv(t, func(o *Options) { o.ExecTokenKey = []byte("another key, another signature!!") })
	if e2.api.ExecutionToken("exec-run") == tok {
		t.Fatal("the key does not change the token")
	}
	// Without a key there are no execution tokens.
	e3 := newEnv(t)
	if e3.api.ExecutionToken("exec-run") != "" {
		t.Fatal("a token without a key")
	}
}
