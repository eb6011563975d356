package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigilhq/vigil/config"
)

// KindControlScript is the kind of a ControlScript object.
const KindControlScript = "ControlScript"

// Defaults and bounds of a ControlScript.
const (
	DefaultTimeout   = 60 * time.Second
	DefaultMemory    = 256 << 20
	DefaultCPUMillis = 1000
	DefaultPids      = 64
	DefaultOutput    = 1 << 20
	DefaultOpenFiles = 1024
	MaxSourceSize    = 512 << 10
)

// ControlScriptSpec is the spec of a ControlScript.
type ControlScriptSpec struct {
	// Source is the script itself. Exactly one of Source and File is set.
	Source string `json:"source,omitempty"`
	// File is an absolute path on the runner's host, read at each run.
	File string `json:"file,omitempty"`
	// Interpreter is an absolute path; default /usr/bin/python3, else the
	// python3 on PATH, resolved once.
	Interpreter string `json:"interpreter,omitempty"`
	// Timeout ends a run that takes longer; default 60s.
	Timeout config.Duration `json:"timeout,omitempty"`
	// Limits bound each run.
	Limits ScriptLimits `json:"limits,omitzero"`
	// Env adds environment variables; the contract's own names are refused.
	Env map[string]string `json:"env,omitempty"`
	// Secrets names Secret objects whose keys become environment variables
	// (upper-cased, '-' and '.' as '_'); their values are masked in output.
	Secrets []string `json:"secrets,omitempty"`
	// Concurrency bounds the runs of this script at once; 0 means no bound
	// beyond the pool's.
	Concurrency int `json:"concurrency,omitempty"`
	// Retry re-runs a failed or timed-out run.
	Retry *Retry `json:"retry,omitempty"`
}

// ScriptLimits are the resource limits of one run; zero values take the
// defaults.
type ScriptLimits struct {
	// Memory is the most memory the run may use, swap excluded; default 256Mi.
	Memory config.Quantity `json:"memory,omitempty"`
	// CPU is in cores ("0.5", 2); default 1.
	CPU CPU `json:"cpu,omitempty"`
	// Pids bounds the processes and threads of the run; default 64.
	Pids int `json:"pids,omitempty"`
	// Output is the bytes kept per stream (stdout, stderr); default 1Mi.
	Output config.Quantity `json:"output,omitempty"`
	// OpenFiles bounds open file descriptors per process; default 1024.
	OpenFiles int `json:"open_files,omitempty"`
	// Network false gives the run no network at all; the API is then
	// reached through a unix socket. Default true.
	Network *bool `json:"network,omitempty"`
}

// cgroup is what of l a run's cgroup enforces.
func (l ScriptLimits) cgroup() Limits {
	return Limits{MemoryBytes: int64(l.Memory), CPUMillis: l.CPU.Millis(), Pids: int64(l.Pids)}
}

// Retry re-runs failed or timed-out runs.
type Retry struct {
	// Count is how many more times a run is tried (1-10).
	Count int `json:"count"`
	// Backoff is the wait before the first retry, doubled each time
	// (capped at 10m); default 10s.
	Backoff config.Duration `json:"backoff,omitempty"`
}

// CPU is a number of cores, kept in thousandths.
type CPU int64

// MarshalJSON writes the cores as a number.
func (c CPU) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(c)/1000, 'f', -1, 64)), nil
}

// UnmarshalJSON accepts 2, 0.5, "0.5" or "500m".
func (c *CPU) UnmarshalJSON(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	if m, ok := strings.CutSuffix(s, "m"); ok {
		n, err := strconv.ParseInt(m, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("must be cores such as 0.5 or millicores such as \"500m\", got %s", b)
		}
		*c = CPU(n)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > 1024 {
		return fmt.Errorf("must be cores such as 0.5 or millicores such as \"500m\", got %s", b)
	}
	*c = CPU(f*1000 + 0.5)
	return nil
}

// Millis returns the cores in thousandths.
func (c CPU) Millis() int64 { return int64(c) }

// WithDefaults returns a copy of s with every zero value replaced by its
// default. The interpreter is resolved here.
func (s ControlScriptSpec) WithDefaults() ControlScriptSpec {
	if s.Interpreter == "" {
		s.Interpreter = DefaultInterpreter()
	}
	if s.Timeout == 0 {
		s.Timeout = config.Duration(DefaultTimeout)
	}
	l := &s.Limits
	if l.Memory == 0 {
		l.Memory = DefaultMemory
	}
	if l.CPU == 0 {
		l.CPU = DefaultCPUMillis
	}
	if l.Pids == 0 {
		l.Pids = DefaultPids
	}
	if l.Output == 0 {
		l.Output = DefaultOutput
	}
	if l.OpenFiles == 0 {
		l.OpenFiles = DefaultOpenFiles
	}
	if l.Network == nil {
		t := true
		l.Network = &t
	}
	if s.Retry != nil && s.Retry.Backoff == 0 {
		r := *s.Retry
		r.Backoff = config.Duration(10 * time.Second)
		s.Retry = &r
	}
	return s
}

var (
	interpOnce sync.Once
	interp     string
)

// DefaultInterpreter returns /usr/bin/python3 when it exists, else the
// absolute path of python3 on PATH, else "/usr/bin/python3". It is resolved
// once per process.
func DefaultInterpreter() string {
	interpOnce.Do(func() {
		interp = "/usr/bin/python3"
		if _, err := os.Stat(interp); err == nil {
			return
		}
		if p, err := exec.LookPath("python3"); err == nil {
			if abs, err := filepath.Abs(p); err == nil {
				interp = abs
			}
		}
	})
	return interp
}

// reservedEnv are the contract's own variables, which spec.env may not set.
var reservedEnv = map[string]bool{
	"API_TOKEN": true, "USER": true, "TENANT": true, "VERSION": true, "DOCKER_GATEWAY": true,
	"VIGIL_API_URL": true, "VIGIL_API_TOKEN": true, "VIGIL_EXECUTION_ID": true, "VIGIL_API_SOCKET": true,
	"PYTHONPATH": true, "HOME": true, "PATH": true,
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func init() {
	config.Register(config.Kind{
		Name:        KindControlScript,
		Description: "a Python script run under limits when an alert fires, on a schedule or on request",
		Validate:    validateControlScript,
	})
}

// DecodeControlScript decodes and checks a ControlScript spec, without the
// syntax check.
func DecodeControlScript(spec json.RawMessage) (*ControlScriptSpec, error) {
	var s ControlScriptSpec
	if err := config.DecodeSpec(spec, &s); err != nil {
		return nil, err
	}
	return &s, checkControlScript(&s)
}

func checkControlScript(s *ControlScriptSpec) error {
	switch {
	case s.Source == "" && s.File == "":
		return config.Errorf("spec.source", "is required (or spec.file)")
	case s.Source != "" && s.File != "":
		return config.Errorf("spec.file", "cannot be given with spec.source")
	case len(s.Source) > MaxSourceSize:
		return config.Errorf("spec.source", "is %d bytes, at most %d allowed", len(s.Source), MaxSourceSize)
	case s.File != "" && !filepath.IsAbs(s.File):
		return config.Errorf("spec.file", "must be an absolute path on the runner's host, got %q", s.File)
	case s.Interpreter != "" && !filepath.IsAbs(s.Interpreter):
		return config.Errorf("spec.interpreter", "must be an absolute path, got %q", s.Interpreter)
	case s.Timeout.D() != 0 && (s.Timeout.D() < time.Second || s.Timeout.D() > 24*time.Hour):
		return config.Errorf("spec.timeout", "must be from 1s to 24h, got %s", s.Timeout.D())
	}
	l := s.Limits
	switch {
	case l.Memory != 0 && (l.Memory < 16<<20 || l.Memory > 64<<30):
		return config.Errorf("spec.limits.memory", "must be from 16Mi to 64Gi, got %s", config.FormatQuantity(int64(l.Memory)))
	case l.CPU != 0 && (l.CPU < 10 || l.CPU > 64000):
		return config.Errorf("spec.limits.cpu", "must be from 0.01 to 64 cores")
	case l.Pids != 0 && (l.Pids < 1 || l.Pids > 32768):
		return config.Errorf("spec.limits.pids", "must be from 1 to 32768, got %d", l.Pids)
	case l.Output != 0 && (l.Output < 1<<10 || l.Output > 64<<20):
		return config.Errorf("spec.limits.output", "must be from 1Ki to 64Mi, got %s", config.FormatQuantity(int64(l.Output)))
	case l.OpenFiles != 0 && (l.OpenFiles < 16 || l.OpenFiles > 1<<20):
		return config.Errorf("spec.limits.open_files", "must be from 16 to 1048576, got %d", l.OpenFiles)
	case s.Concurrency < 0 || s.Concurrency > 1000:
		return config.Errorf("spec.concurrency", "must be from 0 (no bound) to 1000, got %d", s.Concurrency)
	}
	for k, v := range s.Env {
		if !envNameRE.MatchString(k) {
			return config.Errorf("spec.env."+k, "is not a valid environment variable name")
		}
		if strings.IndexByte(v, 0) >= 0 {
			return config.Errorf("spec.env."+k, "holds a NUL byte, which an environment variable cannot")
		}
		if reservedEnv[k] {
			return config.Errorf("spec.env."+k, "is set by vigil and cannot be overridden")
		}
	}
	for i, name := range s.Secrets {
		if err := config.ValidateName(name); err != nil {
			return config.Errorf(fmt.Sprintf("spec.secrets[%d]", i), "%v", err)
		}
	}
	if r := s.Retry; r != nil {
		if r.Count < 1 || r.Count > 10 {
			return config.Errorf("spec.retry.count", "must be from 1 to 10, got %d", r.Count)
		}
		if r.Backoff.D() > 10*time.Minute {
			return config.Errorf("spec.retry.backoff", "must be at most 10m, got %s", r.Backoff.D())
		}
	}
	return nil
}

func validateControlScript(spec json.RawMessage) error {
	s, err := DecodeControlScript(spec)
	if err != nil {
		return err
	}
	src, field := []byte(s.Source), "spec.source"
	if s.File != "" {
		if src, err = os.ReadFile(s.File); err != nil {
			return config.Errorf("spec.file", "cannot be read: %v", err)
		}
		field = "spec.file"
	}
	interp := s.Interpreter
	if interp == "" {
		interp = DefaultInterpreter()
	}
	return SyntaxCheck(context.Background(), interp, src, field)
}

// syntaxCheck compiles the script without running it and prints
// "line:offset:message" for a syntax error.
const syntaxCheck = `import sys
try:
    compile(sys.stdin.buffer.read(), "controlscript.py", "exec")
except SyntaxError as e:
    print("%s:%s:%s" % (e.lineno or 0, e.offset or 0, e.msg))
    sys.exit(3)
except ValueError as e:
    print("0:0:%s" % e)
    sys.exit(3)
`

// SyntaxCheck compiles src with the interpreter and returns a FieldError
// naming the line of a syntax error.
func SyntaxCheck(ctx context.Context, interpreter string, src []byte, field string) error {
	if _, err := os.Stat(interpreter); err != nil {
		return config.Errorf("spec.interpreter", "%s: %v", interpreter, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, interpreter, "-I", "-S", "-c", syntaxCheck)
	cmd.Stdin = bytes.NewReader(src)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 3 {
		parts := strings.SplitN(strings.TrimSpace(string(out)), ":", 3)
		if len(parts) == 3 {
			return config.Errorf(field, "line %s: %s", parts[0], parts[2])
		}
		return config.Errorf(field, "syntax error: %s", strings.TrimSpace(string(out)))
	}
	if err != nil {
		return config.Errorf("spec.interpreter", "syntax check with %s failed: %v", interpreter, err)
	}
	return nil
}
