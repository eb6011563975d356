package config

import (
	"encoding/json"
	"testing"
	"time"
)

func TestDurationJSON(t *testing.T) {
	for in, want := range map[string]time.Duration{`"60s"`: time.Minute, `"1m30s"`: 90 * time.Second, `90`: 90 * time.Second, `"5"`: 5 * time.Second, `0`: 0} {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err != nil || d.D() != want {
			t.Errorf("%s: %v %v", in, d.D(), err)
		}
	}
	for _, in := range []string{`"-5s"`, `-1`, `1.5`, `"soon"`, `true`, `"1e400"`, `99999999999999999`} {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err == nil {
			t.Errorf("%s: accepted as %v", in, d.D())
		}
	}
	b, _ := json.Marshal(Duration(90 * time.Second))
	if string(b) != `"1m30s"` {
		t.Errorf("marshal: %s", b)
	}
}

func TestQuantityJSON(t *testing.T) {
	for in, want := range map[string]int64{`"256Mi"`: 256 << 20, `"1G"`: 1e9, `1024`: 1024, `"1.5Ki"`: 1536, `"2KiB"`: 2048, `"0"`: 0} {
		var q Quantity
		if err := json.Unmarshal([]byte(in), &q); err != nil || int64(q) != want {
			t.Errorf("%s: %d %v", in, q, err)
		}
	}
	for _, in := range []string{`"-1Mi"`, `"Mi"`, `"lots"`, `"99999999999Pi"`, `true`, `""`} {
		var q Quantity
		if err := json.Unmarshal([]byte(in), &q); err == nil {
			t.Errorf("%s: accepted as %d", in, q)
		}
	}
	b, _ := json.Marshal(Quantity(256 << 20))
	if string(b) != `"256Mi"` {
		t.Errorf("marshal: %s", b)
	}
}
