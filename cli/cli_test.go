package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/app"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/vigiltest"
)

func init() {
	// TestWidget is a kind for these tests only: spec.size must be a
	// positive integer.
	config.Register(config.Kind{
		Name:        "TestWidget",
		Description: "a widget for the cli tests",
		Validate: func(spec json.RawMessage) error {
			var s struct {
				Size json.Number `json:"size"`
			}
			if err := json.Unmarshal(spec, &s); err != nil {
				return config.Errorf("spec", "%v", err)
			}
			n, err := s.Size.Int64()
			if err != nil || n <= 0 {
				return config.Errorf("spec.size", "must be a positive integer")
			}
			return nil
		},
	})
}

type result struct {
	code           int
	stdout, stderr string
}

// vigil runs the command line in-process with stdin.
func vigil(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr vigiltest.SyncBuffer
	code := Main(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// isolate points the environment at an empty data directory, so that no
// real server, token or address is used; it returns the directory.
func isolate(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("VIGIL_DATA_DIR", dir)
	t.Setenv("VIGIL_ADDR", "http://127.0.0.1:1") // nothing listens on port 1
	t.Setenv("VIGIL_TOKEN", "")
	t.Setenv("VIGIL_CACERT", "")
	return dir
}

// connect isolates the test and points it at f with the admin token.
func connect(t *testing.T, f *fakeAPI) {
	t.Helper()
	isolate(t)
	t.Setenv("VIGIL_ADDR", f.URL())
	t.Setenv("VIGIL_TOKEN", "vgl_admin")
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func wantCode(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}

func TestVersion(t *testing.T) {
	isolate(t)
	r := vigil(t, "", "version")
	wantCode(t, r, 0)
	if !regexp.MustCompile(`^vigil \S+ \(go[0-9.]+\S*\)\n$`).MatchString(r.stdout) {
		t.Errorf("version output %q", r.stdout)
	}
}

func TestHelp(t *testing.T) {
	isolate(t)
	r := vigil(t, "")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "Usage:") || !strings.Contains(r.stdout, "apply") {
		t.Errorf("no help:\n%s", r.stdout)
	}
	r = vigil(t, "", "get", "--help")
	wantCode(t, r, 0)
	for _, want := range []string{"VIGIL_ADDR", "VIGIL_TOKEN", "admin.token", "<data-dir>/addr", "--cacert"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("get --help does not mention %s", want)
		}
	}
	r = vigil(t, "", "events")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "tail") {
		t.Errorf("events help:\n%s", r.stdout)
	}
}

func TestCompletion(t *testing.T) {
	isolate(t)
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		r := vigil(t, "", "completion", shell)
		wantCode(t, r, 0)
		if len(r.stdout) < 100 {
			t.Errorf("%s completion is %d bytes", shell, len(r.stdout))
		}
	}
}

func TestUsageErrors(t *testing.T) {
	dir := isolate(t)
	file := writeFile(t, filepath.Join(dir, "w.yaml"), "kind: TestWidget\nname: a\nspec: {size: 1}\n")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `unknown command "bogus" for "vigil"`},
		{[]string{"aply"}, `did you mean "apply"?`},
		{[]string{"events", "bogus"}, `unknown command "bogus" for "vigil events"`},
		{[]string{"apply"}, "no files: give -f FILE"},
		{[]string{"apply", "--nope"}, "unknown flag: --nope"},
		{[]string{"apply", "-f", file, "extra"}, `unexpected argument "extra"`},
		{[]string{"get"}, "want KIND [NAME], got 0 arguments"},
		{[]string{"get", "pool", "web", "x"}, "want KIND [NAME], got 3 arguments"},
		{[]string{"get", "pool", "-o", "xml"}, "must be one of table, json, yaml"},
		{[]string{"delete", "pool"}, "want KIND NAME or -f FILE, got 1 arguments"},
		{[]string{"delete", "pool", "web", "-f", file}, "give KIND NAME or -f, not both"},
		{[]string{"events", "publish", "SERVER_DOWN"}, "--obj-type and --obj-name are required"},
		{[]string{"events", "publish", "SERVER_DOWN", "--obj-type", "pool", "--obj-name", "web", "--details", "[1]"}, "--details: must be a JSON object"},
		{[]string{"events", "publish", "SERVER_DOWN", "--obj-type", "pool", "--obj-name", "web", "--details", "{nope"}, "--details: must be a JSON object"},
		{[]string{"events", "publish"}, "want 1 argument(s), EVENT_ID; got 0"},
		{[]string{"events", "list", "--limit", "x"}, `invalid argument "x" for "--limit"`},
		{[]string{"events", "list", "--limit", "-1"}, "--limit: must not be negative"},
		{[]string{"run"}, "want 1 argument(s), NAME; got 0"},
		{[]string{"run", "backup", "-o", "yaml"}, "must be one of text, json"},
		{[]string{"run", "backup", "--alert", file}, "--alert: " + file + " must hold a JSON object"},
		{[]string{"run", "backup", "--alert", "-"}, "--alert: stdin must hold a JSON object"},
		{[]string{"executions", "bogus"}, `unknown command "bogus" for "vigil executions"`},
		{[]string{"executions", "list", "--status", "done"}, "must be one of queued, running, succeeded, failed, timeout, oom, killed, cancelled, rejected"},
		{[]string{"executions", "list", "--limit", "-1"}, "--limit: must not be negative"},
		{[]string{"executions", "list", "-o", "yaml"}, "must be one of table, json"},
		{[]string{"executions", "show"}, "want 1 argument(s), ID; got 0"},
		{[]string{"executions", "show", "x", "-o", "wide"}, "must be one of table, json, yaml"},
		{[]string{"executions", "logs", "a", "b"}, "want 1 argument(s), ID; got 2"},
		{[]string{"executions", "cancel"}, "want 1 argument(s), ID; got 0"},
		{[]string{"token", "create"}, "--role is required"},
		{[]string{"token", "create", "--role", "god"}, "must be one of admin, operator, viewer, script"},
		{[]string{"token", "create", "--role", "admin", "--ttl", "forever"}, "--ttl: want a duration"},
		{[]string{"token", "revoke"}, "want 1 argument(s), NAME; got 0"},
		{[]string{"serve", "--events-max-bytes", "lots"}, `invalid argument "lots" for "--events-max-bytes"`},
		{[]string{"serve", "--log-level", "loud"}, "must be one of debug, info, warn, error"},
		{[]string{"serve", "--shutdown-timeout", "soon"}, `invalid argument "soon" for "--shutdown-timeout"`},
		{[]string{"version", "x"}, `unexpected argument "x"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := vigil(t, "", tt.args...)
			wantCode(t, r, 2)
			if !strings.HasPrefix(r.stderr, "vigil: ") || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr is not one line starting with \"vigil: \": %q", r.stderr)
			}
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr %q does not contain %q", r.stderr, tt.want)
			}
			if !strings.Contains(r.stderr, "--help')") {
				t.Errorf("stderr %q has no pointer to --help", r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout: %q", r.stdout)
			}
		})
	}
}

func TestApplyGetDelete(t *testing.T) {
	f := newFakeAPI(t)
	connect(t, f)
	dir := t.TempDir()
	file := writeFile(t, filepath.Join(dir, "widgets.yaml"), `kind: TestWidget
name: a
spec:
  size: 1
  script: |
    print("hi")
---
kind: testwidget
name: b
spec: {size: 2, labels: {tier: web}}
`)

	r := vigil(t, "", "apply", "-f", file, "--dry-run")
	wantCode(t, r, 0)
	if r.stdout != "TestWidget/a created (dry run)\nTestWidget/b created (dry run)\n" {
		t.Errorf("dry run:\n%s", r.stdout)
	}
	r = vigil(t, "", "apply", "-f", file)
	wantCode(t, r, 0)
	if r.stdout != "TestWidget/a created\nTestWidget/b created\n" {
		t.Errorf("apply:\n%s", r.stdout)
	}
	r = vigil(t, "", "apply", "-f", dir)
	wantCode(t, r, 0)
	if r.stdout != "TestWidget/a unchanged\nTestWidget/b unchanged\n" {
		t.Errorf("apply again:\n%s", r.stdout)
	}

	// Table.
	r = vigil(t, "", "get", "testwidgets")
	wantCode(t, r, 0)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "KIND NAME REVISION UPDATED UPDATED-BY" ||
		strings.Join(strings.Fields(lines[1]), " ") != "TestWidget a 1 2026-01-02T03:04:05Z admin" {
		t.Errorf("table:\n%s", r.stdout)
	}

	// One object as JSON.
	r = vigil(t, "", "get", "TestWidget", "b", "-o", "json")
	wantCode(t, r, 0)
	var obj config.Object
	if err := json.Unmarshal([]byte(r.stdout), &obj); err != nil || obj.Name != "b" || obj.Rev() != 2 {
		t.Errorf("json: %v\n%s", err, r.stdout)
	}

	// A list as JSON is {"items": [...]}, and apply reads it back.
	r = vigil(t, "", "get", "TestWidget", "-o", "json")
	wantCode(t, r, 0)
	var list struct{ Items []config.Object }
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Items) != 2 {
		t.Errorf("json list: %v\n%s", err, r.stdout)
	}
	back := vigil(t, r.stdout, "apply", "-f", "-")
	wantCode(t, back, 0)
	if back.stdout != "TestWidget/a unchanged\nTestWidget/b unchanged\n" {
		t.Errorf("apply of get -o json:\n%s", back.stdout)
	}

	// A list as YAML is a stream of documents that apply reads back, with
	// their revisions.
	r = vigil(t, "", "get", "TestWidget", "-o", "yaml")
	wantCode(t, r, 0)
	if strings.Count(r.stdout, "---\n") != 2 || !strings.Contains(r.stdout, "  script: |\n    print(\"hi\")\n") {
		t.Errorf("yaml list:\n%s", r.stdout)
	}
	back = vigil(t, r.stdout, "apply", "-f", "-")
	wantCode(t, back, 0)
	if back.stdout != "TestWidget/a unchanged\nTestWidget/b unchanged\n" {
		t.Errorf("apply of get -o yaml:\n%s", back.stdout)
	}
	stale := strings.Replace(r.stdout, "size: 1", "size: 5", 1)
	vigil(t, strings.Replace(r.stdout, "size: 1", "size: 3", 1), "apply", "-f", "-")
	r = vigil(t, stale, "apply", "-f", "-")
	wantCode(t, r, 1)
	if r.stderr != "vigil: TestWidget/a: revision 1 is not current (3) (conflict)\n" {
		t.Errorf("stale apply: %q", r.stderr)
	}

	r = vigil(t, "", "get", "TestWidget", "a", "-o", "yaml")
	wantCode(t, r, 0)
	if !strings.HasPrefix(r.stdout, "kind: TestWidget\nname: a\nspec:\n") || strings.Contains(r.stdout, "---") {
		t.Errorf("yaml:\n%s", r.stdout)
	}

	r = vigil(t, "", "get", "kinds")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "NAME") || !strings.Contains(r.stdout, "TestWidget") {
		t.Errorf("kinds:\n%s", r.stdout)
	}

	// Delete.
	r = vigil(t, "", "delete", "testwidget", "a")
	wantCode(t, r, 0)
	if r.stdout != "TestWidget/a deleted\n" {
		t.Errorf("delete: %q", r.stdout)
	}
	r = vigil(t, "", "delete", "testwidget", "a")
	wantCode(t, r, 1)
	if r.stderr != "vigil: TestWidget/a not found (not_found)\n" {
		t.Errorf("delete missing: %q", r.stderr)
	}
	r = vigil(t, "", "delete", "testwidget", "a", "--ignore-missing")
	wantCode(t, r, 0)
	if r.stdout != "TestWidget/a absent\n" {
		t.Errorf("delete --ignore-missing: %q", r.stdout)
	}
	r = vigil(t, "", "delete", "-f", file, "--ignore-missing", "--dry-run")
	wantCode(t, r, 0)
	if r.stdout != "TestWidget/a absent (dry run)\nTestWidget/b deleted (dry run)\n" {
		t.Errorf("delete -f --dry-run: %q", r.stdout)
	}
	r = vigil(t, "", "get", "TestWidget", "b")
	wantCode(t, r, 0)
	r = vigil(t, "", "delete", "-f", file, "--ignore-missing")
	wantCode(t, r, 0)
	r = vigil(t, "", "get", "TestWidget")
	wantCode(t, r, 0)
	if r.stdout != "" || r.stderr != "no TestWidget objects\n" {
		t.Errorf("empty list: %q %q", r.stdout, r.stderr)
	}
	r = vigil(t, "", "get", "TestWidget", "-o", "json")
	if strings.TrimSpace(r.stdout) != "{\n  \"items\": []\n}" {
		t.Errorf("empty json list: %q", r.stdout)
	}
}

func TestConnectionRefused(t *testing.T) {
	isolate(t) // VIGIL_ADDR is http://127.0.0.1:1
	r := vigil(t, "", "get", "kinds")
	wantCode(t, r, 1)
	want := "vigil: GET http://127.0.0.1:1/api/v1/kinds: dial tcp 127.0.0.1:1: connect: connection refused; is 'vigil serve' running there?\n"
	if r.stderr != want {
		t.Errorf("stderr\n got %q\nwant %q", r.stderr, want)
	}
}

func TestAPIErrorIsOneLine(t *testing.T) {
	f := newFakeAPI(t)
	connect(t, f)
	file := writeFile(t, filepath.Join(t.TempDir(), "bad.yaml"), "kind: TestWidget\nname: bad\nspec: {size: -1}\n")
	r := vigil(t, "", "apply", "-f", file)
	wantCode(t, r, 1)
	if r.stderr != "vigil: TestWidget/bad: spec.size: must be a positive integer (invalid_object)\n" {
		t.Errorf("stderr %q", r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("stdout %q", r.stdout)
	}

	r = vigil(t, "", "get", "nosuchkind")
	wantCode(t, r, 1)
	if r.stderr != "vigil: unknown kind \"nosuchkind\" (unknown_kind)\n" {
		t.Errorf("stderr %q", r.stderr)
	}
}

func TestParseErrorsAreReported(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	bad := writeFile(t, filepath.Join(dir, "bad.yaml"), "kind: TestWidget\nname: a\nspecs: {}\n")
	missing := filepath.Join(dir, "missing.yaml")
	r := vigil(t, "", "apply", "-f", bad, "-f", missing)
	wantCode(t, r, 1)
	want := fmt.Sprintf("vigil: %s:3: TestWidget/a: unknown field \"specs\" (an object has kind, name, spec and metadata)\nvigil: read objects: stat %s: no such file or directory\n", bad, missing)
	if r.stderr != want {
		t.Errorf("stderr\n got %q\nwant %q", r.stderr, want)
	}
	empty := writeFile(t, filepath.Join(dir, "empty.yaml"), "# nothing\n")
	r = vigil(t, "", "apply", "-f", empty)
	wantCode(t, r, 1)
	if r.stderr != "vigil: no objects in "+empty+"\n" {
		t.Errorf("stderr %q", r.stderr)
	}
}

func TestDiff(t *testing.T) {
	f := newFakeAPI(t)
	connect(t, f)
	dir := t.TempDir()
	file := writeFile(t, filepath.Join(dir, "w.yaml"), "kind: TestWidget\nname: a\nspec: {size: 1, color: red}\n")
	wantCode(t, vigil(t, "", "apply", "-f", file), 0)

	r := vigil(t, "", "diff", "-f", file)
	wantCode(t, r, 0)
	if r.stdout != "" {
		t.Errorf("no changes, but:\n%s", r.stdout)
	}

	// Key order is no difference.
	writeFile(t, file, "kind: TestWidget\nname: a\nspec: {color: red, size: 1}\n")
	wantCode(t, vigil(t, "", "diff", "-f", file), 0)

	writeFile(t, file, "kind: TestWidget\nname: a\nspec: {size: 2, color: red}\n---\nkind: TestWidget\nname: new\nspec: {size: 1}\n")
	r = vigil(t, "", "diff", "-f", file)
	wantCode(t, r, 1)
	want := `--- live/TestWidget/a
+++ applied/TestWidget/a
@@ -2,4 +2,4 @@
 name: a
 spec:
   color: red
-  size: 1
+  size: 2
--- live/TestWidget/new
+++ applied/TestWidget/new
@@ -0,0 +1,4 @@
+kind: TestWidget
+name: new
+spec:
+  size: 1
`
	if r.stdout != want {
		t.Errorf("diff\n got:\n%s\nwant:\n%s", r.stdout, want)
	}
	// Nothing was written.
	r = vigil(t, "", "diff", "-f", file)
	wantCode(t, r, 1)

	// Errors exit 2, like diff(1).
	t.Setenv("VIGIL_TOKEN", "vgl_wrong")
	r = vigil(t, "", "diff", "-f", file)
	wantCode(t, r, 2)
	if r.stderr != "vigil: no valid token (unauthorized)\n" {
		t.Errorf("stderr %q", r.stderr)
	}
}

func TestValidateOffline(t *testing.T) {
	isolate(t) // VIGIL_ADDR points at nothing: validate must not need a server
	dir := t.TempDir()
	good := writeFile(t, filepath.Join(dir, "good", "w.yaml"), "kind: TestWidget\nname: a\nspec: {size: 1}\n---\nkind: testwidget\nname: b\nspec: {size: 2}\n")
	r := vigil(t, "", "validate", "-f", filepath.Dir(good))
	wantCode(t, r, 0)
	if r.stdout != "2 objects valid\n" {
		t.Errorf("stdout %q", r.stdout)
	}
	r = vigil(t, "kind: TestWidget\nname: c\nspec: {size: 3}\n", "validate", "-f", "-")
	wantCode(t, r, 0)
	if r.stdout != "1 object valid\n" {
		t.Errorf("stdout %q", r.stdout)
	}

	bad := writeFile(t, filepath.Join(dir, "bad.yaml"), `kind: TestWidget
name: ok
spec: {size: 1}
---
kind: TestWidget
name: small
spec: {size: 0}
---
kind: NoSuchKind
name: x
---
kind: TestWidget
name: "bad name!"
spec: {size: 1}
`)
	r = vigil(t, "", "validate", "-f", bad)
	wantCode(t, r, 1)
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 3 errors and a summary, got:\n%s", r.stderr)
	}
	for i, want := range []string{
		bad + ":5: TestWidget/small: spec.size: must be a positive integer",
		bad + ":9: NoSuchKind/x: kind: unknown kind \"NoSuchKind\"",
		bad + ":12: TestWidget/bad name!: name: ",
		"vigil: 3 of 4 objects invalid",
	} {
		if !strings.HasPrefix(lines[i], want) {
			t.Errorf("line %d: %q, want prefix %q", i+1, lines[i], want)
		}
	}
	if r.stdout != "" {
		t.Errorf("stdout %q", r.stdout)
	}
}

func TestConnectionPrecedence(t *testing.T) {
	a := newFakeAPI(t)
	b := newFakeAPI(t)
	b.tokens = map[string]fakeToken{"vgl_b": {Name: "b-admin", Role: "admin"}}
	requests := func(f *fakeAPI) int {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.requests)
	}

	// Environment.
	dir := isolate(t)
	t.Setenv("VIGIL_ADDR", a.URL())
	t.Setenv("VIGIL_TOKEN", "vgl_admin")
	wantCode(t, vigil(t, "", "get", "kinds"), 0)
	if requests(a) != 1 {
		t.Fatalf("server a saw %d requests", requests(a))
	}

	// Flags override the environment.
	wantCode(t, vigil(t, "", "get", "kinds", "--addr", b.URL(), "--token", "vgl_b"), 0)
	if requests(b) != 1 || requests(a) != 1 {
		t.Fatalf("requests: a %d, b %d", requests(a), requests(b))
	}
	r := vigil(t, "", "get", "kinds", "--addr", b.URL())
	wantCode(t, r, 1)
	if r.stderr != "vigil: no valid token (unauthorized)\n" {
		t.Errorf("stderr %q", r.stderr)
	}

	// The data directory: addr and admin.token files.
	t.Setenv("VIGIL_ADDR", "")
	t.Setenv("VIGIL_TOKEN", "")
	writeFile(t, filepath.Join(dir, "addr"), "nats=nats://127.0.0.1:4222\napi="+a.URL()+"\n")
	writeFile(t, filepath.Join(dir, "admin.token"), "  vgl_admin\n")
	wantCode(t, vigil(t, "", "get", "kinds"), 0)
	if requests(a) != 2 {
		t.Fatalf("server a saw %d requests", requests(a))
	}
	// A token from the environment wins over the file.
	t.Setenv("VIGIL_TOKEN", "vgl_wrong")
	wantCode(t, vigil(t, "", "get", "kinds"), 1)
	// And an address from the environment over the file.
	t.Setenv("VIGIL_TOKEN", "vgl_b")
	t.Setenv("VIGIL_ADDR", b.URL())
	wantCode(t, vigil(t, "", "get", "kinds"), 0)
	if requests(b) != 3 {
		t.Fatalf("server b saw %d requests", requests(b))
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{"VIGIL_DATA_DIR": dir}
	e := &env{getenv: func(k string) string { return vars[k] }}

	c, err := e.resolve(&clientFlags{})
	if err != nil {
		t.Fatal(err)
	}
	if c.addr != defaultAddr || c.token != "" || c.addrFrom != "default" {
		t.Errorf("nothing set: %+v", c)
	}

	writeFile(t, filepath.Join(dir, "admin.token"), "vgl_file\n")
	c, _ = e.resolve(&clientFlags{})
	if c.token != "vgl_file" {
		t.Errorf("token file not read: %+v", c)
	}

	// The data directory's admin token is not sent to other hosts.
	vars["VIGIL_ADDR"] = "https://vigil.example.com"
	c, _ = e.resolve(&clientFlags{})
	if c.token != "" {
		t.Errorf("admin token sent to %s: %+v", c.addr, c)
	}
	// Unless the addr file names that host.
	writeFile(t, filepath.Join(dir, "addr"), "api=https://vigil.example.com\n")
	c, _ = e.resolve(&clientFlags{})
	if c.token != "vgl_file" {
		t.Errorf("token for the addr file's host: %+v", c)
	}
	vars["VIGIL_ADDR"] = "localhost:9000"
	c, _ = e.resolve(&clientFlags{})
	if c.token != "vgl_file" {
		t.Errorf("token for localhost: %+v", c)
	}

	vars["VIGIL_CACERT"] = "/env/ca.pem"
	c, _ = e.resolve(&clientFlags{cacert: "/flag/ca.pem"})
	if c.cacert != "/flag/ca.pem" {
		t.Errorf("cacert %q", c.cacert)
	}
	c, _ = e.resolve(&clientFlags{})
	if c.cacert != "/env/ca.pem" {
		t.Errorf("cacert %q", c.cacert)
	}

	vars["VIGIL_DATA_DIR"] = ""
	if e.dataDir() != "./vigil-data" {
		t.Errorf("default data dir %q", e.dataDir())
	}
}

func TestEventsPublishAndList(t *testing.T) {
	f := newFakeAPI(t)
	connect(t, f)
	r := vigil(t, "", "events", "publish", "SERVER_DOWN", "--obj-type", "pool", "--obj-name", "web",
		"--details", `{"se_hm_pool_details": {"pool": "web"}}`)
	wantCode(t, r, 0)
	if r.stdout != "id=01900000-0000-7000-8000-000000000001 seq=1\n" {
		t.Errorf("publish: %q", r.stdout)
	}
	r = vigil(t, "", "events", "publish", "SERVER_UP", "--obj-type", "pool", "--obj-name", "web", "--id", "my-id", "--source", "test")
	wantCode(t, r, 0)
	if r.stdout != "id=my-id seq=2\n" {
		t.Errorf("publish --id: %q", r.stdout)
	}
	r = vigil(t, "", "events", "publish", "SERVER_UP", "--obj-type", "pool", "--obj-name", "web", "--id", "my-id")
	wantCode(t, r, 0)
	if r.stdout != "id=my-id seq=2 duplicate=true\n" {
		t.Errorf("publish duplicate: %q", r.stdout)
	}
	vigil(t, "", "events", "publish", "POOL_DOWN", "--obj-type", "pool", "--obj-name", "db")

	f.mu.Lock()
	var ce map[string]any
	_ = json.Unmarshal(f.events[1], &ce)
	f.mu.Unlock()
	if ce["specversion"] != "1.0" || ce["source"] != "test" || ce["type"] != "SERVER_UP" || ce["subject"] != "pool/web" {
		t.Errorf("CloudEvent sent: %v", ce)
	}

	r = vigil(t, "", "events", "list")
	wantCode(t, r, 0)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 || strings.Join(strings.Fields(lines[0]), " ") != "TIME EVENT_ID OBJ_TYPE OBJ_NAME ID" ||
		strings.Join(strings.Fields(lines[1]), " ") != "2026-01-02T03:04:00.000Z SERVER_DOWN pool web 01900000-0000-7000-8000-000000000001" {
		t.Errorf("table:\n%s", r.stdout)
	}
	if r.stderr != "" {
		t.Errorf("stderr %q", r.stderr)
	}

	r = vigil(t, "", "events", "list", "--obj-name", "web", "--limit", "1")
	wantCode(t, r, 0)
	if r.stderr != "next cursor: 1\n" || strings.Count(r.stdout, "\n") != 2 {
		t.Errorf("page: %q %q", r.stdout, r.stderr)
	}
	r = vigil(t, "", "events", "list", "--obj-name", "web", "--cursor", "1", "-o", "json")
	wantCode(t, r, 0)
	var events []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &events); err != nil || len(events) != 1 || events[0]["id"] != "my-id" {
		t.Errorf("json: %v\n%s", err, r.stdout)
	}
	r = vigil(t, "", "events", "list", "--event-id", "NOPE", "-o", "json")
	wantCode(t, r, 0)
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("empty json: %q", r.stdout)
	}
}

func TestEventsTailReconnects(t *testing.T) {
	f := newFakeAPI(t)
	connect(t, f)
	f.dropStreamAfter = 2
	for _, obj := range []string{"a", "b", "c"} {
		f.addEvent(map[string]any{"event_id": "SERVER_DOWN", "obj_type": "pool", "obj_name": obj})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr vigiltest.SyncBuffer
	e := &env{
		stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr,
		getenv: os.Getenv, tailBackoff: 10 * time.Millisecond,
	}
	done := make(chan int, 1)
	go func() { done <- e.main(ctx, []string{"events", "tail", "-o", "json"}) }()

	waitFor(t, func() bool { return strings.Count(stdout.String(), "\n") >= 3 })
	f.addEvent(map[string]any{"event_id": "SERVER_UP", "obj_type": "pool", "obj_name": "a"})
	waitFor(t, func() bool { return strings.Count(stdout.String(), "\n") >= 4 })
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code %d; stderr %s", code, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("tail did not stop on cancel")
	}
	var names []string
	for line := range strings.SplitSeq(strings.TrimSpace(stdout.String()), "\n") {
		var ev struct {
			Data struct {
				EventID string `json:"event_id"`
				ObjName string `json:"obj_name"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		names = append(names, ev.Data.EventID+"/"+ev.Data.ObjName)
	}
	if got := strings.Join(names, " "); got != "SERVER_DOWN/a SERVER_DOWN/b SERVER_DOWN/c SERVER_UP/a" {
		t.Errorf("events: %s", got)
	}
	f.mu.Lock()
	ids := fmt.Sprint(f.lastEventIDs)
	f.mu.Unlock()
	if ids != "[ 2]" {
		t.Errorf("Last-Event-ID of the connections: %s", ids)
	}
	if !strings.Contains(stderr.String(), "event stream ended; reconnecting in 10ms") {
		t.Errorf("stderr %q", stderr.String())
	}
}

func TestEventsTailTable(t *testing.T) {
	f := newFakeAPI(t)
	connect(t, f)
	f.addEvent(map[string]any{"event_id": "SERVER_DOWN", "obj_type": "pool", "obj_name": "web"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr vigiltest.SyncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"events", "tail", "--obj-type", "pool"}, strings.NewReader(""), &stdout, &stderr)
	}()
	waitFor(t, func() bool { return strings.Count(stdout.String(), "\n") >= 2 })
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit code %d", code)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if strings.Join(strings.Fields(lines[0]), " ") != "TIME EVENT_ID OBJ_TYPE OBJ_NAME ID" ||
		strings.Join(strings.Fields(lines[1]), " ") != "2026-01-02T03:04:00.000Z SERVER_DOWN pool web 01900000-0000-7000-8000-000000000001" {
		t.Errorf("tail table:\n%s", stdout.String())
	}
}

func TestEventsTailFailsOnClientErrors(t *testing.T) {
	f := newFakeAPI(t)
	connect(t, f)
	t.Setenv("VIGIL_TOKEN", "vgl_wrong")
	r := vigil(t, "", "events", "tail")
	wantCode(t, r, 1)
	if !strings.HasSuffix(r.stderr, "vigil: no valid token (unauthorized)\n") {
		t.Errorf("stderr %q", r.stderr)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTokens(t *testing.T) {
	f := newFakeAPI(t)
	connect(t, f)
	r := vigil(t, "", "token", "create", "--role", "operator", "--name", "ci", "--description", "CI runs")
	wantCode(t, r, 0)
	if r.stdout != "vgl_ci\n" {
		t.Errorf("stdout %q, want the token alone", r.stdout)
	}
	if r.stderr != "created token \"ci\": role operator, expires 2026-01-31T00:00:00Z; it is shown only this once\n" {
		t.Errorf("stderr %q", r.stderr)
	}

	// The new token works, and an operator may not create tokens.
	r = vigil(t, "", "token", "create", "--role", "viewer", "--token", "vgl_ci")
	wantCode(t, r, 1)
	if r.stderr != "vigil: role operator may not create tokens (forbidden)\n" {
		t.Errorf("stderr %q", r.stderr)
	}

	r = vigil(t, "", "token", "list")
	wantCode(t, r, 0)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "NAME ROLE EXPIRES CREATED CREATED-BY DESCRIPTION" ||
		strings.Join(strings.Fields(lines[1]), " ") != "admin admin - - admin -" ||
		strings.Join(strings.Fields(lines[2]), " ") != "ci operator 2026-01-31T00:00:00Z 2026-01-01T00:00:00Z admin CI runs" {
		t.Errorf("list:\n%s", r.stdout)
	}
	r = vigil(t, "", "token", "list", "-o", "json")
	wantCode(t, r, 0)
	var list struct{ Items []map[string]any }
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Items) != 2 {
		t.Errorf("json: %v\n%s", err, r.stdout)
	}

	r = vigil(t, "", "token", "revoke", "ci")
	wantCode(t, r, 0)
	if r.stdout != "token \"ci\" revoked\n" {
		t.Errorf("revoke: %q", r.stdout)
	}
	r = vigil(t, "", "token", "revoke", "ci")
	wantCode(t, r, 1)
	if r.stderr != "vigil: token not found (not_found)\n" {
		t.Errorf("revoke again: %q", r.stderr)
	}
}

// testEnv returns an env whose server and reset-admin are recorded rather
// than run.
func testEnv(vars map[string]string) (*env, *bytes.Buffer, *bytes.Buffer) {
	var stdout, stderr bytes.Buffer
	e := &env{
		stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr,
		getenv:      func(k string) string { return vars[k] },
		tailBackoff: time.Millisecond,
	}
	return e, &stdout, &stderr
}

func TestServeFlags(t *testing.T) {
	e, stdout, stderr := testEnv(nil)
	var got app.Options
	var gotCtx context.Context
	e.run = func(ctx context.Context, o app.Options) error {
		got, gotCtx = o, ctx
		o.Logger.Debug("debug line")
		o.Logger.Warn("warn line", "k", "v")
		return nil
	}
	type ctxKey struct{}
	ctx := context.WithValue(context.Background(), ctxKey{}, "main's")
	code := e.main(ctx, []string{
		"serve",
		"--data-dir", "/d", "--listen", "127.0.0.1:0", "--tls-cert", "c.pem", "--tls-key", "k.pem", "--metrics-public",
		"--nats-listen", "off", "--nats-url", "nats://n:4222", "--nats-creds", "u.creds", "--nats-user", "u",
		"--nats-password", "p", "--nats-ca", "ca.pem", "--nats-cert", "nc.pem", "--nats-key", "nk.pem",
		"--nats-replicas", "3", "--sync-always", "--no-runner", "--runner-pool-size", "4", "--no-warm-pool", "--run-dir", "/r", "--config", "a.yaml", "--config", "dir,with,commas", "--config-prune",
		"--secret-key-file", "s.key", "--events-max-age", "24h", "--events-max-bytes", "512Mi",
		"--shutdown-timeout", "3s", "--log-level", "warn",
	})
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr)
	}
	if gotCtx.Value(ctxKey{}) != "main's" {
		t.Error("serve did not run with Main's context")
	}
	if got.Logger == nil || got.Stdout != io.Writer(stdout) || got.Version == "" {
		t.Errorf("logger %v, stdout %v, version %q", got.Logger, got.Stdout, got.Version)
	}
	got.Logger, got.Stdout, got.Version = nil, nil, ""
	want := app.Options{
		DataDir: "/d", Listen: "127.0.0.1:0", TLSCert: "c.pem", TLSKey: "k.pem", MetricsPublic: true,
		NATSListen: "off", NATSURL: "nats://n:4222", NATSCreds: "u.creds", NATSUser: "u", NATSPassword: "p",
		NATSCA: "ca.pem", NATSCert: "nc.pem", NATSKey: "nk.pem", NATSReplicas: 3, SyncAlways: true,
		NoRunner: true, RunnerPoolSize: 4, NoWarmPool: true, RunDir: "/r",
		ConfigPaths: []string{"a.yaml", "dir,with,commas"}, ConfigPrune: true, SecretKeyFile: "s.key",
		EventsMaxAge: 24 * time.Hour, EventsMaxBytes: 512 << 20, ShutdownTimeout: 3 * time.Second,
	}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("options\n got %+v\nwant %+v", got, want)
	}
	logs := stderr.String()
	if strings.Contains(logs, "debug line") || !strings.Contains(logs, `"msg":"warn line","k":"v"`) {
		t.Errorf("logs at level warn, as JSON:\n%s", logs)
	}

	// Defaults.
	e, _, _ = testEnv(nil)
	e.run = func(_ context.Context, o app.Options) error { got = o; return nil }
	if code := e.main(context.Background(), []string{"serve"}); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	got.Logger, got.Stdout, got.Version = nil, nil, ""
	want = app.Options{
		DataDir: "./vigil-data", Listen: "127.0.0.1:8480", NATSListen: "127.0.0.1:4222",
		EventsMaxAge: 168 * time.Hour, EventsMaxBytes: 1 << 30, ShutdownTimeout: 10 * time.Second,
		NATSReplicas: 1, RunnerPoolSize: 8,
	}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("defaults\n got %+v\nwant %+v", got, want)
	}

	// $VIGIL_DATA_DIR is serve's default data dir too.
	e, _, _ = testEnv(map[string]string{"VIGIL_DATA_DIR": "/srv/vigil"})
	e.run = func(_ context.Context, o app.Options) error { got = o; return nil }
	if code := e.main(context.Background(), []string{"serve"}); code != 0 || got.DataDir != "/srv/vigil" {
		t.Errorf("serve with VIGIL_DATA_DIR: exit %d, data dir %q", code, got.DataDir)
	}

	// A failing server is one line and exit 1.
	e, _, stderr = testEnv(nil)
	e.run = func(context.Context, app.Options) error {
		return errors.New("listen tcp 127.0.0.1:8480: address already in use")
	}
	if code := e.main(context.Background(), []string{"serve"}); code != 1 {
		t.Errorf("exit code %d", code)
	}
	if stderr.String() != "vigil: listen tcp 127.0.0.1:8480: address already in use\n" {
		t.Errorf("stderr %q", stderr.String())
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"1Gi": 1 << 30, "512Mi": 512 << 20, "1000": 1000, "1G": 1e9, "10k": 10000, "1.5Gi": 3 << 29, "2KiB": 2048, "0": 0,
	} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "Gi", "-1", "lots", "99999999999Ti", "1e400"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q): no error", in)
		}
	}
	if formatSize(1<<30) != "1Gi" || formatSize(1500) != "1500" {
		t.Errorf("formatSize: %s %s", formatSize(1<<30), formatSize(1500))
	}
}

func TestTokenResetAdmin(t *testing.T) {
	e, stdout, _ := testEnv(map[string]string{"VIGIL_DATA_DIR": "/from/env"})
	var dirs []string
	e.resetAdmin = func(_ context.Context, dataDir string, w io.Writer) error {
		dirs = append(dirs, dataDir)
		fmt.Fprintf(w, "new admin token written to %s/admin.token\n", dataDir)
		return nil
	}
	if code := e.main(context.Background(), []string{"token", "reset-admin"}); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if code := e.main(context.Background(), []string{"token", "reset-admin", "--data-dir", "/d"}); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if fmt.Sprint(dirs) != "[/from/env /d]" {
		t.Errorf("data dirs %v", dirs)
	}
	if !strings.Contains(stdout.String(), "/d/admin.token") {
		t.Errorf("stdout %q", stdout.String())
	}
}

// TestServeSchedulers: serve lets the server set GOMAXPROCS while
// virtual services serve, unless GOMAXPROCS is in its environment.
func TestServeSchedulers(t *testing.T) {
	for _, c := range []struct {
		name string
		vars map[string]string
		set  bool
	}{
		{"GOMAXPROCS unset", nil, true},
		{"GOMAXPROCS set", map[string]string{"GOMAXPROCS": "3"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, _, stderr := testEnv(c.vars)
			e.procs = func(int) int { return 1 }
			var got app.Options
			e.run = func(_ context.Context, o app.Options) error { got = o; return nil }
			if code := e.main(context.Background(), []string{"serve", "--data-dir", t.TempDir()}); code != 0 {
				t.Fatalf("exit code %d: %s", code, stderr)
			}
			if (got.Procs != nil) != c.set {
				t.Errorf("Options.Procs set: %v, want %v", got.Procs != nil, c.set)
			}
		})
	}
}
