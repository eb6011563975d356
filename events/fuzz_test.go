package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// FuzzDecode checks that Decode never panics, and that what it accepts
// survives Marshal → Decode unchanged and has a well-formed subject. Seeds
// are in testdata/fuzz/FuzzDecode as well.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(designExample))
	f.Add([]byte(`{"specversion":"1.0","type":"SERVER_UP","source":"/a","id":"x","data":{"obj_type":"pool","obj_name":"a.b c"}}`))
	f.Add([]byte(`{"specversion":"1.0","type":"X","trace":"t","n":1.5e3,"b":false,"data":null}`))
	f.Add([]byte(`{"event_id":"CUSTOM","obj_name":"_","event_details":{"k":"<&>"}}`))
	f.Add([]byte(`{"event_id":"SERVER_DOWN","event_details":{"se_hm_pool_details":{"a":1},"b":2}}`))
	f.Add([]byte(`{"specversion":"1.0","type":"X","time":"2025-11-25T17:00:00.123456789+05:30"}`))
	f.Add([]byte(`{"event_id":"X"} x`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := Decode(b, "/fuzz", testNow)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Decode error %v (%T) is not a *FieldError", err, err)
			}
			return
		}
		m, err := ev.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a decoded event: %v", err)
		}
		ev2, err := Decode(m, "/other", testNow.AddDate(1, 0, 0))
		if err != nil {
			t.Fatalf("Decode(Marshal()) of %s: %v", m, err)
		}
		if !reflect.DeepEqual(ev, ev2) {
			t.Fatalf("round trip changed the event:\n got %+v\nwant %+v", *ev2, *ev)
		}
		if m2, err := ev2.Marshal(); err != nil || !bytes.Equal(m, m2) {
			t.Fatalf("Marshal not stable: %v\n%s\n%s", err, m, m2)
		}
		var ev3 Event
		if err := json.Unmarshal(m, &ev3); err != nil || !reflect.DeepEqual(*ev, ev3) {
			t.Fatalf("json.Unmarshal(Marshal()) = %+v, %v", ev3, err)
		}

		subj := ev.NATSSubject()
		toks := strings.Split(subj, ".")
		if len(toks) != 5 {
			t.Fatalf("subject %q has %d tokens", subj, len(toks))
		}
		for _, tok := range toks {
			if tok == "" || tok == "*" || tok == ">" {
				t.Fatalf("subject %q has token %q", subj, tok)
			}
		}
		for i := 0; i < len(subj); i++ {
			if c := subj[i]; c < 0x21 || c > 0x7e || c == '*' || c == '>' {
				t.Fatalf("subject %q has byte 0x%02X", subj, c)
			}
		}
		id, typ, name, err := ParseSubject(subj)
		if err != nil || id != ev.Data.EventID || typ != ev.Data.ObjType || name != ev.Data.ObjName {
			t.Fatalf("ParseSubject(%q) = %q %q %q, %v", subj, id, typ, name, err)
		}
		if ev.Type != ev.Data.EventID || checkID(ev.ID) != "" {
			t.Fatalf("type %q, id %q", ev.Type, ev.ID)
		}
	})
}

// FuzzSubjectToken checks that EscapeToken makes one non-empty, safe token
// that UnescapeToken turns back into the input, and that UnescapeToken never
// panics.
func FuzzSubjectToken(f *testing.F) {
	for _, s := range []string{"", "_", "__", "a.b", "*", ">", " ", "%", "%5F", "é", "\x00", "\xff", "SERVER_DOWN", "%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok := EscapeToken(s)
		if tok == "" || strings.ContainsAny(tok, ".*> \t\r\n") {
			t.Fatalf("EscapeToken(%q) = %q", s, tok)
		}
		for i := 0; i < len(tok); i++ {
			if c := tok[i]; c < 0x21 || c > 0x7e {
				t.Fatalf("EscapeToken(%q) = %q has byte 0x%02X", s, tok, c)
			}
		}
		back, err := UnescapeToken(tok)
		if err != nil || back != s {
			t.Fatalf("UnescapeToken(EscapeToken(%q)) = %q, %v", s, back, err)
		}
		if u, err := UnescapeToken(s); err == nil {
			// A well-formed token unescapes to a value whose escape
			// unescapes to the same value.
			if again, err := UnescapeToken(EscapeToken(u)); err != nil || again != u {
				t.Fatalf("token %q: %q then %q, %v", s, u, again, err)
			}
		}
	})
}

// TestFuzzDecodeSeeds keeps the seed files meaningful: those named
// invalid_* must be rejected, the others accepted.
func TestFuzzDecodeSeeds(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzDecode", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no seeds: %v", err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			head, lit, ok := strings.Cut(strings.TrimSpace(string(raw)), "\n")
			if !ok || head != "go test fuzz v1" || !strings.HasPrefix(lit, "[]byte(") || !strings.HasSuffix(lit, ")") {
				t.Fatalf("%s is not a Go fuzz corpus file", file)
			}
			s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lit, "[]byte("), ")"))
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			_, err = Decode([]byte(s), "/seed", testNow)
			if invalid := strings.HasPrefix(name, "invalid_"); invalid != (err != nil) {
				t.Fatalf("Decode(%s) error = %v", s, err)
			}
		})
	}
}
