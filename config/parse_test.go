package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func parseString(t *testing.T, name, in string) ([]*Object, error) {
	t.Helper()
	return ParseObjects(strings.NewReader(in), name)
}

// specString returns the spec compacted, for comparisons.
func specString(t *testing.T, o *Object) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(o.Spec, &v); err != nil {
		t.Fatalf("%s/%s: spec is not JSON: %v: %s", o.Kind, o.Name, err, o.Spec)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func TestParseYAMLMultiDoc(t *testing.T) {
	in := `# leading comment
---
kind: Pool
name: web
spec:
  port: 8080
  timeout: 60s
  memory: 256Mi
  ratio: 0.5
  enabled: true
  nothing: null
  servers:
    - {ip: 10.0.0.5, port: 80}
    - ip: "10.0.0.6"
  when: 2024-01-02T03:04:05Z
  octal: 0o17
  hex: 0x1F
  yes_is_string: yes
  script: |
    line one
    line two
---
# an empty document
---
kind: Secret
name: db
metadata:
  revision: 7
  uuid: secret-1234
  created: 2024-01-02T03:04:05Z
  updated_by: admin
spec:
  data: {password: hunter2}
...
`
	objs, err := parseString(t, "objects.yaml", in)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 {
		t.Fatalf("got %d objects, want 2", len(objs))
	}
	if objs[0].Kind != "Pool" || objs[0].Name != "web" {
		t.Errorf("first object is %s/%s", objs[0].Kind, objs[0].Name)
	}
	want := `{"enabled":true,"hex":31,"memory":"256Mi","nothing":null,"octal":15,"port":8080,"ratio":0.5,` +
		`"script":"line one\nline two\n","servers":[{"ip":"10.0.0.5","port":80},{"ip":"10.0.0.6"}],` +
		`"timeout":"60s","when":"2024-01-02T03:04:05Z","yes_is_string":"yes"}`
	if got := specString(t, objs[0]); got != want {
		t.Errorf("spec\n got %s\nwant %s", got, want)
	}
	if objs[0].Metadata.Revision != nil {
		t.Errorf("revision = %d, want none", *objs[0].Metadata.Revision)
	}
	if objs[1].Rev() != 7 || objs[1].Metadata.Revision == nil {
		t.Errorf("revision = %v, want 7", objs[1].Metadata.Revision)
	}
	if objs[1].Metadata.UUID != "" {
		t.Errorf("metadata.uuid was read: %q", objs[1].Metadata.UUID)
	}
}

func TestParseKeepsKeyOrderAndNumbers(t *testing.T) {
	objs, err := parseString(t, "x.yaml", "kind: A\nname: a\nspec: {z: 1, a: 12345678901234567890, m: 1.50}\n")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(objs[0].Spec), `{"z":1,"a":12345678901234567890,"m":1.50}`; got != want {
		t.Errorf("spec = %s, want %s", got, want)
	}
}

func TestParseNoSpec(t *testing.T) {
	objs, err := parseString(t, "x.yaml", "kind: A\nname: a\n---\nkind: A\nname: b\nspec: null\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if string(o.Spec) != "{}" {
			t.Errorf("%s: spec = %s, want {}", o.Name, o.Spec)
		}
	}
}

func TestParseJSONShapes(t *testing.T) {
	tests := map[string]string{
		"single":  `{"kind": "Pool", "name": "a", "spec": {"port": 1}}`,
		"array":   `[{"kind": "Pool", "name": "a", "spec": {"port": 1}}, {"kind": "Pool", "name": "b"}]`,
		"objects": `{"objects": [{"kind": "Pool", "name": "a", "spec": {"port": 1}}, {"kind": "Pool", "name": "b"}]}`,
		"items":   "{\"items\": [\n\t{\"kind\": \"Pool\", \"name\": \"a\", \"spec\": {\"port\": 1}},\n\t{\"kind\": \"Pool\", \"name\": \"b\"}]}",
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			for _, file := range []string{"x.json", "x.yaml", "-"} {
				objs, err := parseString(t, file, in)
				if err != nil {
					t.Fatalf("%s: %v", file, err)
				}
				if len(objs) == 0 || objs[0].Name != "a" || string(objs[0].Spec) != `{"port":1}` {
					t.Fatalf("%s: got %+v", file, objs)
				}
				if name != "single" && len(objs) != 2 {
					t.Fatalf("%s: got %d objects, want 2", file, len(objs))
				}
			}
		})
	}
}

func TestParseJSONRevision(t *testing.T) {
	objs, err := parseString(t, "x.json", `{"kind": "Pool", "name": "a", "metadata": {"revision": 0, "created": "2024-01-02T03:04:05Z"}}`)
	if err != nil {
		t.Fatal(err)
	}
	if objs[0].Metadata.Revision == nil || *objs[0].Metadata.Revision != 0 {
		t.Fatalf("revision = %v, want 0", objs[0].Metadata.Revision)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, in := range []string{"", "\n", "# just a comment\n", "---\n---\n", "null\n"} {
		objs, err := parseString(t, "x.yaml", in)
		if err != nil || len(objs) != 0 {
			t.Errorf("%q: got %v, %v; want nothing", in, objs, err)
		}
	}
	objs, err := parseString(t, "x.json", "  \n")
	if err != nil || len(objs) != 0 {
		t.Errorf("empty json: got %v, %v", objs, err)
	}
}

func TestParseAnchorsAndMerge(t *testing.T) {
	in := `kind: Pool
name: a
spec:
  defaults: &d {port: 80, weight: 1}
  primary:
    <<: *d
    weight: 5
  backup: *d
  list: [*d, *d]
`
	objs, err := parseString(t, "x.yaml", in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"backup":{"port":80,"weight":1},"defaults":{"port":80,"weight":1},"list":[{"port":80,"weight":1},{"port":80,"weight":1}],"primary":{"port":80,"weight":5}}`
	if got := specString(t, objs[0]); got != want {
		t.Errorf("spec\n got %s\nwant %s", got, want)
	}
}

// TestParseIgnoresStatus: an object read back with its status can be
// applied as it is; the status is not kept.
func TestParseIgnoresStatus(t *testing.T) {
	objs, err := ParseObjects(strings.NewReader("kind: Pool\nname: web\nspec: {}\nstatus: {last_run: now}\n"), "x.yaml")
	if err != nil || len(objs) != 1 || objs[0].Status != nil {
		t.Fatalf("%v %+v", err, objs)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, file, in string
		line           int
		object         string
		want           string
	}{
		{"unknown field", "objects.yaml", "kind: Pool\nname: web\nspecs: {}\n", 3, "Pool/web", `objects.yaml:3: Pool/web: unknown field "specs"`},
		{"unknown field in second doc", "objects.yaml", "kind: Pool\nname: a\n---\nkind: Pool\nname: web\n\nstatuses: {}\n", 7, "Pool/web", `unknown field "statuses"`},
		{"no kind", "x.yaml", "name: web\nspec: {}\n", 1, "", "kind: is required"},
		{"no name", "x.yaml", "kind: Pool\nspec: {}\n", 1, "", "name: is required"},
		{"kind not string", "x.yaml", "kind: [a]\nname: web\n", 1, "", "kind: must be a string, got a list"},
		{"name not string", "x.yaml", "kind: Pool\nname: 123\n", 2, "", "name: must be a string, got the number 123"},
		{"empty name", "x.yaml", "kind: Pool\nname: ''\n", 2, "", "name: must not be empty"},
		{"spec not mapping", "x.yaml", "kind: Pool\nname: web\nspec: [1]\n", 3, "Pool/web", "spec: must be a mapping, got a list"},
		{"metadata not mapping", "x.yaml", "kind: Pool\nname: web\nmetadata: 1\n", 3, "Pool/web", "metadata: must be a mapping"},
		{"negative revision", "x.yaml", "kind: Pool\nname: web\nmetadata: {revision: -1}\n", 3, "Pool/web", "metadata.revision: must be a non-negative integer, got the number -1"},
		{"string revision", "x.yaml", "kind: Pool\nname: web\nmetadata:\n  revision: \"3\"\n", 4, "Pool/web", "metadata.revision: must be a non-negative integer"},
		{"float revision", "x.json", `{"kind": "Pool", "name": "web", "metadata": {"revision": 1.5}}`, 1, "Pool/web", "metadata.revision: must be a non-negative integer"},
		{"int key", "x.yaml", "kind: Pool\nname: web\nspec:\n  codes:\n    200: ok\n", 5, "Pool/web", "mapping key 200 is not a string; quote it"},
		{"null key", "x.yaml", "kind: Pool\nname: web\nspec:\n  ~: ok\n", 4, "Pool/web", "mapping key ~ is not a string"},
		{"complex key", "x.yaml", "kind: Pool\nname: web\nspec:\n  ? [a, b]\n  : ok\n", 4, "Pool/web", "mapping key is a list"},
		{"duplicate key", "x.yaml", "kind: Pool\nname: web\nspec:\n  a: 1\n  a: 2\n", 5, "Pool/web", `key "a" appears twice`},
		{"duplicate json key", "x.json", "{\"kind\": \"Pool\", \"name\": \"web\",\n \"name\": \"x\"}", 2, "", `key "name" appears twice`},
		{"infinity", "x.yaml", "kind: Pool\nname: web\nspec:\n  x: .inf\n", 4, "Pool/web", ".inf cannot be written in JSON"},
		{"custom tag", "x.yaml", "kind: Pool\nname: web\nspec:\n  x: !foo bar\n", 4, "Pool/web", "unsupported tag !foo"},
		{"set tag", "x.yaml", "kind: Pool\nname: web\nspec:\n  x: !!set {a, b}\n", 4, "Pool/web", "unsupported tag !!set"},
		{"scalar document", "x.yaml", "hello\n", 1, "", "a document must be an object with kind, name and spec, got the string \"hello\""},
		{"list of scalars", "x.yaml", "- 1\n", 1, "", "an object must be a mapping"},
		{"objects not list", "x.json", `{"objects": 1}`, 1, "", "objects: must be a list of objects"},
		{"yaml syntax", "x.yaml", "kind: Pool\nname: web\n  bad: indent\n", 3, "", "mapping values are not allowed in this context"},
		{"json syntax", "x.json", "{\"kind\": \"Pool\",\n\"name\": }", 2, "", "invalid JSON"},
		{"json trailing", "x.json", "{\"kind\": \"Pool\", \"name\": \"a\"}\n{}", 2, "", "data after the top-level value"},
		{"alias cycle", "x.yaml", "kind: Pool\nname: web\nspec: &a\n  x: *a\n", 3, "Pool/web", "an alias refers to a node that contains it"},
		{"merge cycle", "x.yaml", "kind: Pool\nname: web\nspec: &a\n  <<: *a\n", 3, "Pool/web", "an alias refers to a node that contains it"},
		{"merge scalar", "x.yaml", "kind: Pool\nname: web\nspec:\n  <<: 1\n", 4, "Pool/web", "a merge key (<<) takes a mapping"},
		{"unknown anchor", "x.yaml", "kind: Pool\nname: web\nspec: *nope\n", 0, "", `unknown anchor 'nope'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := parseString(t, tt.file, tt.in)
			if err == nil {
				t.Fatalf("no error; got %d objects", len(objs))
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *ParseError", err, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if pe.File != tt.file || pe.Line != tt.line {
				t.Errorf("error at %s:%d, want %s:%d (%v)", pe.File, pe.Line, tt.file, tt.line, err)
			}
			if pe.Object != tt.object {
				t.Errorf("object = %q, want %q", pe.Object, tt.object)
			}
		})
	}
}

func TestParseBillionLaughs(t *testing.T) {
	var b strings.Builder
	b.WriteString("kind: Pool\nname: lol\nspec:\n  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= 12; i++ {
		refs := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d, ", i-1), 10), ", ")
		fmt.Fprintf(&b, "  a%d: &a%d [%s]\n", i, i, refs)
	}
	start := time.Now()
	_, err := parseString(t, "lol.yaml", b.String())
	if err == nil || !strings.Contains(err.Error(), "expands to more than 8 MiB") {
		t.Fatalf("error = %v, want the expansion refused", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("refusing took %v", d)
	}
}

func TestParseExpansionWithinBudget(t *testing.T) {
	in := "kind: Pool\nname: a\nspec:\n  x: &x [1, 2, 3]\n  y: [*x, *x, *x]\n"
	objs, err := parseString(t, "x.yaml", in)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(objs[0].Spec), `{"x":[1,2,3],"y":[[1,2,3],[1,2,3],[1,2,3]]}`; got != want {
		t.Errorf("spec = %s, want %s", got, want)
	}
}

func TestParseTooLarge(t *testing.T) {
	in := "kind: Pool\nname: a\nspec:\n  x: \"" + strings.Repeat("a", MaxFileSize) + "\"\n"
	_, err := parseString(t, "big.yaml", in)
	if err == nil || !strings.Contains(err.Error(), "big.yaml: larger than 8 MiB") {
		t.Fatalf("error = %v", err)
	}
}

func TestParseDeepNesting(t *testing.T) {
	in := "kind: Pool\nname: a\nspec: {x: " + strings.Repeat("[", 2000) + strings.Repeat("]", 2000) + "}\n"
	if _, err := parseString(t, "deep.yaml", in); err == nil {
		t.Fatal("no error for 2000 levels of nesting")
	}
	inJSON := `{"kind": "Pool", "name": "a", "spec": {"x": ` + strings.Repeat("[", 2000) + strings.Repeat("]", 2000) + "}}"
	if _, err := parseString(t, "deep.json", inJSON); err == nil || !strings.Contains(err.Error(), "nested more than") {
		t.Fatalf("json: error = %v", err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadObjectFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "conf", "b.yaml"), "kind: Pool\nname: b\n")
	writeFile(t, filepath.Join(dir, "conf", "a.json"), `[{"kind": "Pool", "name": "a"}]`)
	writeFile(t, filepath.Join(dir, "conf", "c.yml"), "kind: Pool\nname: c\n")
	writeFile(t, filepath.Join(dir, "conf", "notes.txt"), "not objects")
	writeFile(t, filepath.Join(dir, "conf", "sub", "d.yaml"), "kind: Pool\nname: d\n")
	writeFile(t, filepath.Join(dir, "e.yaml"), "kind: Pool\nname: e\n")

	objs, err := ReadObjectFiles([]string{filepath.Join(dir, "conf"), filepath.Join(dir, "e.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.Name)
	}
	if got, want := strings.Join(names, ","), "a,b,c,e"; got != want {
		t.Errorf("names = %s, want %s", got, want)
	}

	srcs, err := ReadObjectSources([]string{filepath.Join(dir, "conf", "b.yaml"), "-"}, strings.NewReader("kind: Pool\nname: f\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := srcs[0].Pos(), filepath.Join(dir, "conf", "b.yaml")+":1"; got != want {
		t.Errorf("pos = %s, want %s", got, want)
	}
	if len(srcs) != 2 || srcs[1].Pos() != "<stdin>:1" || srcs[1].Object.Name != "f" {
		t.Errorf("stdin: got %+v", srcs)
	}
	if _, err := ReadObjectSources([]string{"-", "-"}, strings.NewReader("")); err == nil || !strings.Contains(err.Error(), "more than once") {
		t.Errorf("stdin twice: %v", err)
	}
}

func TestReadObjectFilesDuplicates(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.yaml")
	b := filepath.Join(dir, "b.yaml")
	writeFile(t, a, "kind: Pool\nname: web\n")
	writeFile(t, b, "kind: Pool\nname: other\n---\nkind: pool\nname: web\n")
	_, err := ReadObjectFiles([]string{a, b})
	if err == nil {
		t.Fatal("no error for a duplicate")
	}
	want := b + ":4: pool/web: defined twice, also at " + a + ":1"
	if err.Error() != want {
		t.Errorf("error\n got %q\nwant %q", err, want)
	}
}

func TestReadObjectFilesErrors(t *testing.T) {
	dir := t.TempDir()
	bad1 := filepath.Join(dir, "bad1.yaml")
	bad2 := filepath.Join(dir, "bad2.yaml")
	writeFile(t, bad1, "kind: Pool\nname: a\nspecs: {}\n")
	writeFile(t, bad2, "kind: Pool\n")
	_, err := ReadObjectFiles([]string{bad1, bad2, filepath.Join(dir, "missing.yaml")})
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 {
		t.Fatalf("want one error per file, got %q", err)
	}
	if !strings.HasPrefix(lines[0], bad1+":3:") || !strings.HasPrefix(lines[1], bad2+":1:") || !strings.Contains(lines[2], "missing.yaml") {
		t.Errorf("errors: %q", lines)
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Error("joined error does not hold a *ParseError")
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Error("joined error does not hold os.ErrNotExist")
	}
}

func TestReadObjectFilesTooLarge(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	writeFile(t, big, "kind: Pool\nname: a\n#"+strings.Repeat("x", MaxFileSize)+"\n")
	_, err := ReadObjectFiles([]string{big})
	if err == nil || !strings.Contains(err.Error(), "larger than 8 MiB") {
		t.Fatalf("error = %v", err)
	}
}

func TestJSONToYAMLRoundTrip(t *testing.T) {
	rev := uint64(3)
	obj := &Object{
		Kind: "ControlScript",
		Name: "scale-out",
		Spec: json.RawMessage(`{"z":"1","script":"import sys\nprint(sys.argv[1])\n","on":"yes","off":"n","n":12,"f":1.5e3,"t":true,"empty":{},"list":[],"time":"2024-01-02T03:04:05Z","nul":null}`),
		Metadata: Metadata{
			UUID:     "controlscript-1",
			Revision: &rev,
		},
	}
	data, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	y, err := JSONToYAML(data)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(y), "script: |\n") {
		t.Errorf("multi-line string not in literal style:\n%s", y)
	}
	if !strings.Contains(string(y), "\"on\": \"yes\"\n") {
		t.Errorf("YAML 1.1 boolean not quoted:\n%s", y)
	}
	if !strings.HasPrefix(string(y), "kind: ControlScript\nname: scale-out\nspec:\n  z: \"1\"\n") {
		t.Errorf("key order or quoting lost:\n%s", y)
	}
	back, err := ParseObjects(strings.NewReader(string(y)), "back.yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	if len(back) != 1 || back[0].Kind != obj.Kind || back[0].Name != obj.Name || back[0].Rev() != 3 {
		t.Fatalf("got %+v", back)
	}
	if got, want := string(back[0].Spec), string(obj.Spec); got != want {
		t.Errorf("spec\n got %s\nwant %s", got, want)
	}
}
