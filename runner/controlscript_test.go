package runner

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/config"
)

func validate(t *testing.T, spec string) error {
	t.Helper()
	return config.Kinds.Validate(&config.Object{Kind: "controlscript", Name: "s", Spec: json.RawMessage(spec)})
}

func TestControlScriptValidation(t *testing.T) {
	if _, err := os.Stat(DefaultInterpreter()); err != nil {
		t.Skip("no python3: ", err)
	}
	if err := validate(t, `{"source": "import json\nprint(json.dumps({}))\n", "timeout": "30s",
		"limits": {"memory": "128Mi", "cpu": "500m", "pids": 16, "output": "64Ki", "open_files": 256, "network": false},
		"env": {"MODE": "x"}, "secrets": ["db"], "concurrency": 2, "retry": {"count": 2, "backoff": "5s"}}`); err != nil {
		t.Fatalf("valid script refused: %v", err)
	}
	script := filepath.Join(t.TempDir(), "s.py")
	_ = os.WriteFile(script, []byte("print('x')\n"), 0o644)
	if err := validate(t, `{"file": "`+script+`"}`); err != nil {
		t.Fatalf("file script refused: %v", err)
	}
	cases := map[string]string{
		`{}`:                              "spec.source",
		`{"source": "x=1", "file": "/a"}`: "spec.file",
		`{"file": "rel.py"}`:              "spec.file",
		`{"file": "/does/not/exist.py"}`:  "spec.file",
		`{"source": "x=1", "interpreter": "python3"}`:               "spec.interpreter",
		`{"source": "x=1", "interpreter": "/no/python"}`:            "spec.interpreter",
		`{"source": "x=1", "timeout": "10ms"}`:                      "spec.timeout",
		`{"source": "x=1", "timeout": "soon"}`:                      "spec.timeout",
		`{"source": "x=1", "limits": {"memory": "1Mi"}}`:            "spec.limits.memory",
		`{"source": "x=1", "limits": {"memory": "lots"}}`:           "spec.limits.memory",
		`{"source": "x=1", "limits": {"cpu": 100}}`:                 "spec.limits.cpu",
		`{"source": "x=1", "limits": {"pids": 0.5}}`:                "spec.limits.pids",
		`{"source": "x=1", "limits": {"pids": 100000}}`:             "spec.limits.pids",
		`{"source": "x=1", "limits": {"output": "1"}}`:              "spec.limits.output",
		`{"source": "x=1", "limits": {"open_files": 1}}`:            "spec.limits.open_files",
		`{"source": "x=1", "limits": {"netwrk": false}}`:            "spec.limits.netwrk",
		`{"source": "x=1", "env": {"API_TOKEN": "x"}}`:              "spec.env.API_TOKEN",
		`{"source": "x=1", "env": {"1BAD": "x"}}`:                   "spec.env.1BAD",
		`{"source": "x=1", "env": {"NUL": "a\u0000b"}}`:             "spec.env.NUL",
		`{"source": "x=1", "secrets": ["bad name"]}`:                "spec.secrets[0]",
		`{"source": "x=1", "concurrency": -1}`:                      "spec.concurrency",
		`{"source": "x=1", "retry": {"count": 0}}`:                  "spec.retry.count",
		`{"source": "x=1", "retry": {"count": 1, "backoff": "1h"}}`: "spec.retry.backoff",
	}
	for spec, field := range cases {
		err := validate(t, spec)
		var fe *config.FieldError
		if !errors.As(err, &fe) || fe.Field != field || fe.Object != "ControlScript/s" {
			t.Errorf("%s: got %v, want an error on %s", spec, err, field)
		}
	}
}

func TestControlScriptSyntaxCheck(t *testing.T) {
	if _, err := os.Stat(DefaultInterpreter()); err != nil {
		t.Skip("no python3: ", err)
	}
	err := validate(t, `{"source": "import sys\n\ndef f(:\n    pass\n"}`)
	var fe *config.FieldError
	if !errors.As(err, &fe) || fe.Field != "spec.source" || !strings.Contains(fe.Message, "line 3") {
		t.Fatalf("syntax error: %v", err)
	}
	// The check compiles and never runs the script.
	marker := filepath.Join(t.TempDir(), "ran")
	if err := validate(t, `{"source": "open('`+marker+`', 'w').write('x')"}`); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the syntax check ran the script")
	}
}

func TestControlScriptDefaults(t *testing.T) {
	s, err := DecodeControlScript(json.RawMessage(`{"source": "x=1", "retry": {"count": 1}}`))
	if err != nil {
		t.Fatal(err)
	}
	d := s.WithDefaults()
	if d.Timeout.D() != time.Minute || d.Limits.Memory != 256<<20 || d.Limits.CPU.Millis() != 1000 || d.Limits.Pids != 64 ||
		d.Limits.Output != 1<<20 || d.Limits.OpenFiles != 1024 || !*d.Limits.Network || d.Retry.Backoff.D() != 10*time.Second ||
		!filepath.IsAbs(d.Interpreter) {
		t.Fatalf("defaults: %+v", d)
	}
	if s.Retry.Backoff != 0 || s.Limits.Network != nil {
		t.Fatal("WithDefaults changed its receiver's pointers")
	}
	b, _ := json.Marshal(d.Limits)
	if !strings.Contains(string(b), `"memory":"256Mi"`) || !strings.Contains(string(b), `"cpu":1`) {
		t.Fatalf("limits JSON: %s", b)
	}
}
