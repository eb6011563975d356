package integrations

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	_ "github.com/vigilhq/vigil/actions" // registers ActionGroup and AlertConfig
	"github.com/vigilhq/vigil/config"
	_ "github.com/vigilhq/vigil/runner" // registers ControlScript
)

// TestBundled: every bundled integration loads, its objects pass the
// kinds' own validation, its script compiles with the interpreter that
// runs it, its README documents each parameter and secret key, and each
// parameter and secret key is read by the script.
func TestBundled(t *testing.T) {
	list, err := List()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"pagerduty", "servicenow", "slack", "teams", "vcenter-scale-in", "vcenter-scale-out", "webhook"}
	var names []string
	for _, in := range list {
		names = append(names, in.Name)
	}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("integrations %v, want %v", names, want)
	}
	tmp := t.TempDir()
	for _, in := range list {
		t.Run(in.Name, func(t *testing.T) {
			if in.Summary == "" || strings.Contains(in.Summary, "\n") {
				t.Errorf("summary %q: want one line", in.Summary)
			}
			set := map[string]string{}
			for _, p := range in.Parameters {
				if p.Description == "" {
					t.Errorf("parameter %s has no description", p.Name)
				}
				if p.Required {
					set[p.Name] = "x"
				}
				if !strings.Contains(in.README, p.Name) {
					t.Errorf("README does not mention parameter %s", p.Name)
				}
				if !strings.Contains(in.Source, p.Name) {
					t.Errorf("script.py does not read parameter %s", p.Name)
				}
			}
			for _, s := range in.Secrets {
				for _, k := range s.Keys {
					env := strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(k.Name))
					if !strings.Contains(in.README, k.Name) {
						t.Errorf("README does not mention secret key %s", k.Name)
					}
					if !strings.Contains(in.Source, env) {
						t.Errorf("script.py does not read %s (secret key %s)", env, k.Name)
					}
				}
			}
			objs, err := in.Build(set)
			if err != nil {
				t.Fatal(err)
			}
			if objs[0].Kind != "ControlScript" || objs[0].Name != in.Name {
				t.Fatalf("first object %s/%s", objs[0].Kind, objs[0].Name)
			}
			for _, o := range objs {
				kd, ok := config.Kinds.Lookup(o.Kind)
				if !ok {
					t.Fatalf("%s/%s: unknown kind", o.Kind, o.Name)
				}
				if err := kd.Validate(o.Spec); err != nil {
					t.Errorf("%s/%s: %v", o.Kind, o.Name, err)
				}
			}
			var spec struct {
				Secrets []string `json:"secrets"`
			}
			_ = json.Unmarshal(objs[0].Spec, &spec)
			for _, s := range in.Secrets {
				if !contains(spec.Secrets, s.Name) {
					t.Errorf("the ControlScript does not list Secret %s in secrets", s.Name)
				}
			}
			file := filepath.Join(tmp, in.Name+".py")
			if err := os.WriteFile(file, []byte(in.Source), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.CommandContext(context.Background(), "/usr/bin/python3", "-m", "py_compile", file).CombinedOutput()
			if err != nil {
				t.Fatalf("py_compile: %v\n%s", err, out)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestBuildParameters: --set values reach the environment and ${NAME}
// in objects; an unknown or missing parameter is refused by name.
func TestBuildParameters(t *testing.T) {
	in := &Integration{
		Name: "demo", Source: "print(1)\n",
		Script:     json.RawMessage(`{"timeout": "30s", "env": {"FIXED": "1"}}`),
		Parameters: []Parameter{{Name: "POOL", Description: "the pool", Required: true}, {Name: "PORT", Description: "the port", Default: "80"}},
		Objects: []Object{{Kind: "AlertConfig", Name: "demo", Spec: json.RawMessage(
			`{"events": ["SERVER_AUTOSCALE_OUT"], "obj_type": "pool", "obj_name": "${POOL}", "summary": "port ${PORT} of ${POOL}"}`)}},
	}
	if _, err := in.Build(nil); err == nil || !strings.Contains(err.Error(), "--set POOL=...   the pool") {
		t.Fatalf("missing: %v", err)
	}
	if _, err := in.Build(map[string]string{"POOL": "web", "PROT": "1"}); err == nil ||
		!regexp.MustCompile(`has no parameter PROT \(it has: POOL, PORT\)`).MatchString(err.Error()) {
		t.Fatalf("unknown: %v", err)
	}
	objs, err := in.Build(map[string]string{"POOL": "web"})
	if err != nil {
		t.Fatal(err)
	}
	var cs struct {
		Source  string            `json:"source"`
		Timeout string            `json:"timeout"`
		Env     map[string]string `json:"env"`
	}
	if err := json.Unmarshal(objs[0].Spec, &cs); err != nil {
		t.Fatal(err)
	}
	if cs.Source != "print(1)\n" || cs.Timeout != "30s" || cs.Env["POOL"] != "web" || cs.Env["PORT"] != "80" || cs.Env["FIXED"] != "1" {
		t.Fatalf("ControlScript spec %s", objs[0].Spec)
	}
	var ac map[string]any
	_ = json.Unmarshal(objs[1].Spec, &ac)
	if ac["obj_name"] != "web" || ac["summary"] != "port 80 of web" {
		t.Fatalf("AlertConfig spec %s", objs[1].Spec)
	}
	in.Objects[0].Spec = json.RawMessage(`{"obj_name": "${NOPE}"}`)
	if _, err := in.Build(map[string]string{"POOL": "web"}); err == nil || !strings.Contains(err.Error(), "uses ${NOPE}, which is not a parameter") {
		t.Fatalf("bad template: %v", err)
	}
	if _, err := Get("../etc"); err == nil {
		t.Fatal("Get ../etc")
	}
	if _, err := Get("nope"); err == nil || !strings.Contains(err.Error(), "bundled: ") {
		t.Fatalf("Get nope: %v", err)
	}
}
