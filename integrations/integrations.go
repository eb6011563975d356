package integrations

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/vigilhq/vigil/config"
)

// files are the bundled integrations, one folder each.
//
//go:embed */integration.yaml */script.py */README.md
var files embed.FS

// Integration is a bundled ControlScript and what installing it creates.
type Integration struct {
	// Name is the integration's, its folder's and its ControlScript's.
	Name    string `json:"name"`
	Summary string `json:"summary"`
	// Script is the ControlScript's spec without its source.
	Script json.RawMessage `json:"script,omitempty"`
	// Parameters become the ControlScript's environment.
	Parameters []Parameter `json:"parameters,omitempty"`
	// Secrets are the Secrets the script reads.
	Secrets []Secret `json:"secrets,omitempty"`
	// Objects are created with the ControlScript.
	Objects []Object `json:"objects,omitempty"`

	// Source is script.py; README is README.md.
	Source string `json:"-"`
	README string `json:"-"`
}

// Parameter is one setting of an integration, given with --set NAME=VALUE.
type Parameter struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Default     string `json:"default,omitempty"`
	Required    bool   `json:"required,omitempty"`
}

// Secret is a Secret an integration reads, and its keys.
type Secret struct {
	Name string      `json:"name"`
	Keys []SecretKey `json:"keys"`
}

// SecretKey is one key of a Secret: the script sees it as the environment
// variable named after it, upper-cased.
type SecretKey struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// Object is an object an integration creates besides its ControlScript.
// ${NAME} in its string values is replaced by parameter NAME's value.
type Object struct {
	Kind string          `json:"kind"`
	Name string          `json:"name"`
	Spec json.RawMessage `json:"spec"`
}

// List returns the bundled integrations, by name.
func List() ([]*Integration, error) {
	dirs, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, err
	}
	var out []*Integration
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		in, err := load(d.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ErrUnknown is wrapped by Get's error for a name that is not bundled.
var ErrUnknown = errors.New("no such integration")

// Get returns the bundled integration name.
func Get(name string) (*Integration, error) {
	if name == "" || strings.ContainsAny(name, "/\\.") {
		return nil, fmt.Errorf("%w: %q", ErrUnknown, name)
	}
	if _, err := fs.Stat(files, path.Join(name, "integration.yaml")); err != nil {
		all, _ := List()
		names := make([]string, len(all))
		for i, in := range all {
			names[i] = in.Name
		}
		return nil, fmt.Errorf("%w: %q (bundled: %s)", ErrUnknown, name, strings.Join(names, ", "))
	}
	return load(name)
}

func load(dir string) (*Integration, error) {
	read := func(file string) (string, error) {
		b, err := files.ReadFile(path.Join(dir, file))
		return string(b), err
	}
	manifest, err := read("integration.yaml")
	if err != nil {
		return nil, err
	}
	var doc any
	if err := yaml.Unmarshal([]byte(manifest), &doc); err != nil {
		return nil, fmt.Errorf("integration %s: integration.yaml: %w", dir, err)
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("integration %s: integration.yaml: %w", dir, err)
	}
	var in Integration
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("integration %s: integration.yaml: %w", dir, err)
	}
	if in.Name != dir {
		return nil, fmt.Errorf("integration %s: integration.yaml names it %q", dir, in.Name)
	}
	if in.Source, err = read("script.py"); err != nil {
		return nil, err
	}
	if in.README, err = read("README.md"); err != nil {
		return nil, err
	}
	return &in, nil
}

// paramRE matches ${NAME} in object templates.
var paramRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Values returns the parameters' values: the defaults, overridden by set.
// A name in set that is not a parameter, or a required parameter left
// empty, is an error that names it and says what it is for.
func (in *Integration) Values(set map[string]string) (map[string]string, error) {
	vals := make(map[string]string, len(in.Parameters))
	known := map[string]bool{}
	for _, p := range in.Parameters {
		known[p.Name] = true
		vals[p.Name] = p.Default
	}
	var unknown []string
	for k, v := range set {
		if !known[k] {
			unknown = append(unknown, k)
			continue
		}
		vals[k] = v
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		names := make([]string, 0, len(in.Parameters))
		for _, p := range in.Parameters {
			names = append(names, p.Name)
		}
		return nil, fmt.Errorf("integration %s has no parameter %s (it has: %s)", in.Name, strings.Join(unknown, ", "), strings.Join(names, ", "))
	}
	var missing []string
	for _, p := range in.Parameters {
		if p.Required && vals[p.Name] == "" {
			missing = append(missing, fmt.Sprintf("  --set %s=...   %s", p.Name, p.Description))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("integration %s needs these parameters:\n%s", in.Name, strings.Join(missing, "\n"))
	}
	return vals, nil
}

// Build returns the objects installing the integration creates: its
// ControlScript, with the script as source and the parameters as its
// environment, then its other objects with ${NAME} replaced.
func (in *Integration) Build(set map[string]string) ([]*config.Object, error) {
	vals, err := in.Values(set)
	if err != nil {
		return nil, err
	}
	var script map[string]any
	if len(in.Script) > 0 {
		if err := json.Unmarshal(in.Script, &script); err != nil {
			return nil, fmt.Errorf("integration %s: script: %w", in.Name, err)
		}
	}
	if script == nil {
		script = map[string]any{}
	}
	env, _ := script["env"].(map[string]any)
	if env == nil {
		env = map[string]any{}
	}
	for k, v := range vals {
		env[k] = v
	}
	if len(env) > 0 {
		script["env"] = env
	}
	script["source"] = in.Source
	spec, err := json.Marshal(script)
	if err != nil {
		return nil, fmt.Errorf("integration %s: script: %w", in.Name, err)
	}
	objs := []*config.Object{{Kind: "ControlScript", Name: in.Name, Spec: spec}}
	for i, o := range in.Objects {
		var v any
		if err := json.Unmarshal(o.Spec, &v); err != nil {
			return nil, fmt.Errorf("integration %s: objects[%d]: %w", in.Name, i, err)
		}
		var bad error
		v = substitute(v, func(name string) string {
			val, ok := vals[name]
			if !ok && bad == nil {
				bad = fmt.Errorf("integration %s: objects[%d] (%s %s) uses ${%s}, which is not a parameter", in.Name, i, o.Kind, o.Name, name)
			}
			return val
		})
		if bad != nil {
			return nil, bad
		}
		spec, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("integration %s: objects[%d]: %w", in.Name, i, err)
		}
		objs = append(objs, &config.Object{Kind: o.Kind, Name: o.Name, Spec: spec})
	}
	return objs, nil
}

// substitute replaces ${NAME} in every string of v.
func substitute(v any, value func(string) string) any {
	switch t := v.(type) {
	case string:
		return paramRE.ReplaceAllStringFunc(t, func(m string) string { return value(m[2 : len(m)-1]) })
	case []any:
		for i := range t {
			t[i] = substitute(t[i], value)
		}
	case map[string]any:
		for k := range t {
			t[k] = substitute(t[k], value)
		}
	}
	return v
}
