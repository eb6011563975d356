package python

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// python is the interpreter ControlScripts run with (runner.DefaultInterpreter
// prefers it too).
const python = "/usr/bin/python3"

// TestPythonSDK runs the SDK's unittest suite (tests/test_vigil.py), which
// serves a fake API on loopback and on a unix socket.
func TestPythonSDK(t *testing.T) {
	if _, err := os.Stat(python); err != nil {
		t.Skipf("the Python SDK's tests need %s: %v", python, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-m", "unittest", "discover", "-s", "tests", "-v")
	cmd.Dir = "." // go test runs in the package directory: contrib/python
	cmd.Env = append(hermeticEnv(), "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s -m unittest discover -s tests -v: %v\n%s", python, err, out)
	}
	if testing.Verbose() {
		t.Logf("%s", out)
	}
}

// hermeticEnv is the test process's environment without the variables a
// ControlScript's environment would set, which the suite sets itself.
func hermeticEnv() []string {
	drop := map[string]bool{
		"API_TOKEN": true, "VIGIL_API_TOKEN": true, "VIGIL_API_URL": true, "VIGIL_API_SOCKET": true,
		"VIGIL_EXECUTION_ID": true, "PYTHONPATH": true, "PYTHONHOME": true, "PYTHONSTARTUP": true,
	}
	var env []string
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); !drop[name] {
			env = append(env, kv)
		}
	}
	return env
}
