package events

import (
	"strings"
	"testing"
)

func TestEscapeToken(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "_"},
		{"_", "%5F"},
		{"__", "__"},
		{"a_b", "a_b"},
		{"SERVER_DOWN", "SERVER_DOWN"},
		{"web", "web"},
		{"shop.example.com", "shop%2Eexample%2Ecom"},
		{"my pool", "my%20pool"},
		{"a*b>c", "a%2Ab%3Ec"},
		{">", "%3E"},
		{"100%", "100%25"},
		{"%5F", "%255F"},
		{"tab\there", "tab%09here"},
		{"\x00\x7f", "%00%7F"},
		{"café", "caf%C3%A9"},
		{"日本", "%E6%97%A5%E6%9C%AC"},
		{"\xff", "%FF"},
		{"!\"#$&'()+,-/:;<=?@[\\]^`{|}~", "!\"#$&'()+,-/:;<=?@[\\]^`{|}~"},
	}
	for _, tt := range tests {
		if got := EscapeToken(tt.in); got != tt.want {
			t.Errorf("EscapeToken(%q) = %q, want %q", tt.in, got, tt.want)
		}
		got, err := UnescapeToken(tt.want)
		if err != nil || got != tt.in {
			t.Errorf("UnescapeToken(%q) = %q, %v, want %q", tt.want, got, err, tt.in)
		}
	}
}

func TestUnescapeToken(t *testing.T) {
	ok := map[string]string{
		"_":     "",
		"%5F":   "_",
		"a%5Fb": "a_b",
		"%41":   "A", // over-escaped but well formed
		"a__b":  "a__b",
	}
	for in, want := range ok {
		if got, err := UnescapeToken(in); err != nil || got != want {
			t.Errorf("UnescapeToken(%q) = %q, %v, want %q", in, got, err, want)
		}
	}
	bad := []string{
		"",      // empty token
		"%",     // truncated
		"%4",    // truncated
		"a%",    // truncated
		"%4G",   // not hex
		"%zz",   // not hex
		"%2e",   // lower-case hex
		"a.b",   // raw dot
		"a*",    // raw wildcard
		">",     // raw wildcard
		"a b",   // raw space
		"a\x00", // raw control
		"é",     // raw non-ASCII
		"%41 ",  // raw space after an escape
	}
	for _, in := range bad {
		if got, err := UnescapeToken(in); err == nil {
			t.Errorf("UnescapeToken(%q) = %q, want an error", in, got)
		}
	}
}

func TestSubjects(t *testing.T) {
	if got, want := SubjectFor("SERVER_DOWN", "pool", "web.1"), "vigil.events.SERVER_DOWN.pool.web%2E1"; got != want {
		t.Errorf("SubjectFor = %q, want %q", got, want)
	}
	if got, want := SubjectFor("X", "", "_"), "vigil.events.X._.%5F"; got != want {
		t.Errorf("SubjectFor = %q, want %q", got, want)
	}
	ev := &Event{Data: Record{EventID: "VS_DOWN", ObjType: "virtualservice", ObjName: "shop front"}}
	if got, want := ev.NATSSubject(), "vigil.events.VS_DOWN.virtualservice.shop%20front"; got != want {
		t.Errorf("NATSSubject = %q, want %q", got, want)
	}
	filters := []struct {
		id, typ, name, want string
	}{
		{"", "", "", "vigil.events.*.*.*"},
		{"SERVER_DOWN", "", "", "vigil.events.SERVER_DOWN.*.*"},
		{"", "pool", "web.1", "vigil.events.*.pool.web%2E1"},
		{"", "", "*", "vigil.events.*.*.%2A"},
		{"", "", "_", "vigil.events.*.*.%5F"},
	}
	for _, f := range filters {
		if got := FilterSubject(f.id, f.typ, f.name); got != f.want {
			t.Errorf("FilterSubject(%q, %q, %q) = %q, want %q", f.id, f.typ, f.name, got, f.want)
		}
	}
	if EventsPrefix != "vigil.events" || IngestPrefix != "vigil.ingest" || RejectedPrefix != "vigil.rejected" {
		t.Error("subject prefixes changed")
	}
}

func TestParseSubject(t *testing.T) {
	for _, c := range [][3]string{
		{"SERVER_DOWN", "pool", "web"},
		{"X", "", ""},
		{"X", "_", "a.b c*>%"},
	} {
		id, typ, name, err := ParseSubject(SubjectFor(c[0], c[1], c[2]))
		if err != nil || id != c[0] || typ != c[1] || name != c[2] {
			t.Errorf("ParseSubject(SubjectFor(%q)) = %q %q %q, %v", c, id, typ, name, err)
		}
	}
	for _, s := range []string{
		"vigil.ingest.X.a.b",
		"vigil.events.X.a",
		"vigil.events.X.a.b.c",
		"vigil.events.X..b",
		"vigil.events.X.a.%zz",
		"vigil.eventsX.a.b.c",
	} {
		if _, _, _, err := ParseSubject(s); err == nil {
			t.Errorf("ParseSubject(%q) succeeded", s)
		}
	}
}

func TestEscapeTokenLeavesSafeStringsAlone(t *testing.T) {
	s := strings.Repeat("a", 1000)
	if EscapeToken(s) != s {
		t.Fatal("EscapeToken changed a safe string")
	}
}
