package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzParseObjects checks that the parser never panics, that every object it
// returns has a kind, a name and a spec that is JSON, that every failure is a
// *ParseError, and that an object written back with JSONToYAML parses to the
// same object.
func FuzzParseObjects(f *testing.F) {
	f.Add([]byte("kind: Pool\nname: web\nspec:\n  port: 80\n---\nkind: Secret\nname: db\nmetadata: {revision: 3}\n"), false)
	f.Add([]byte(`[{"kind": "Pool", "name": "a", "spec": {"port": 1}}]`), true)
	f.Add([]byte("kind: Pool\nname: web\nspecs: {}\n"), false)
	f.Add([]byte("a: &a [*a]\n"), false)
	// The seed corpus in testdata/fuzz/FuzzParseObjects holds more.
	f.Fuzz(func(t *testing.T, data []byte, asJSON bool) {
		name := "fuzz.yaml"
		if asJSON {
			name = "fuzz.json"
		}
		objs, err := ParseObjects(bytes.NewReader(data), name)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *ParseError", err, err)
			}
			if pe.File != name {
				t.Fatalf("error names file %q, want %q", pe.File, name)
			}
			return
		}
		for _, o := range objs {
			if o.Kind == "" || o.Name == "" {
				t.Fatalf("object without kind or name: %+v", o)
			}
			if !json.Valid(o.Spec) {
				t.Fatalf("%s/%s: spec is not JSON: %q", o.Kind, o.Name, o.Spec)
			}
			roundTrip(t, o)
		}
	})
}

func roundTrip(t *testing.T, o *Object) {
	t.Helper()
	data, err := json.Marshal(o)
	if err != nil {
		t.Fatalf("%s/%s: marshal: %v", o.Kind, o.Name, err)
	}
	if len(data) > 256<<10 {
		return // big expansions: the YAML encoder is slow, and the fuzzer with it
	}
	y, err := JSONToYAML(data)
	if err != nil {
		t.Fatalf("%s/%s: JSONToYAML: %v\n%s", o.Kind, o.Name, err, data)
	}
	back, err := ParseObjects(bytes.NewReader(y), "back.yaml")
	if err != nil {
		t.Fatalf("%s/%s: parse back: %v\n%s", o.Kind, o.Name, err, y)
	}
	if len(back) != 1 {
		t.Fatalf("%s/%s: parsed back %d objects\n%s", o.Kind, o.Name, len(back), y)
	}
	b := back[0]
	if b.Kind != o.Kind || b.Name != o.Name || b.Rev() != o.Rev() || (b.Metadata.Revision == nil) != (o.Metadata.Revision == nil) {
		t.Fatalf("parsed back %s/%s rev %d, want %s/%s rev %d", b.Kind, b.Name, b.Rev(), o.Kind, o.Name, o.Rev())
	}
	if !bytes.Equal(b.Spec, o.Spec) {
		t.Fatalf("%s/%s: spec changed\n got %s\nwant %s\nyaml:\n%s", o.Kind, o.Name, b.Spec, o.Spec, y)
	}
}
