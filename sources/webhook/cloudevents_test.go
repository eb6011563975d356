package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
)

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func hmacRaw(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

const ceReceiver = `
kind: WebhookReceiver
name: ce
spec:
  format: cloudevents
  auth: {type: none}
`

// The three modes of the HTTP binding give the same events; header values
// are percent-decoded.
func TestCloudEventsModes(t *testing.T) {
	pub := &fakePublisher{}
	r := newRig(t, ceReceiver, rigOpts{pub: pub, noJS: true})
	record := `{"event_id":"SERVER_DOWN","obj_type":"pool","obj_name":"web","event_details":{"se_hm_pool_details":{"pool":"web"}}}`
	binary := map[string]string{
		"Content-Type":   "application/json; charset=utf-8",
		"ce-specversion": "1.0",
		"ce-id":          "evt%2D1", // needless encoding of '-'
		"ce-source":      "/my/monitor",
		"ce-type":        "SERVER_DOWN",
		"ce-time":        "2026-01-02T10:00:00Z",
		"ce-comment":     "caf%C3%A9 %25 done",
	}
	if a := r.post("ce", binary, []byte(record)); a.status != 202 {
		t.Fatalf("binary: %d %s", a.status, a.body)
	}
	structured := `{"specversion":"1.0","id":"evt-1","source":"/my/monitor","type":"SERVER_DOWN","time":"2026-01-02T10:00:00Z",
		"datacontenttype":"application/json; charset=utf-8","comment":"café % done","data":` + record + `}`
	if a := r.post("ce", map[string]string{"Content-Type": "application/cloudevents+json; charset=UTF-8"}, []byte(structured)); a.status != 202 {
		t.Fatalf("structured: %d %s", a.status, a.body)
	}
	if a := r.post("ce", map[string]string{"Content-Type": "application/cloudevents-batch+json"}, []byte("["+structured+"]")); a.status != 202 {
		t.Fatalf("batch: %d %s", a.status, a.body)
	}
	evs := pub.got()
	if len(evs) != 3 {
		t.Fatalf("%d events", len(evs))
	}
	first, _ := evs[0].Marshal()
	if !strings.Contains(string(first), `"comment":"café % done"`) || !strings.Contains(string(first), `"id":"evt-1"`) {
		t.Fatalf("binary event: %s", first)
	}
	for i, ev := range evs[1:] {
		b, _ := ev.Marshal()
		if string(b) != string(first) {
			t.Fatalf("mode %d differs:\n%s\n%s", i+1, b, first)
		}
	}
	if evs[0].Extensions[ExtReceiver] != "ce" || evs[0].Data.ObjName != "web" {
		t.Fatalf("%+v", evs[0])
	}
}

// An invalid event gets 400 naming the attribute; a batch fails whole.
func TestCloudEventsInvalid(t *testing.T) {
	pub := &fakePublisher{}
	r := newRig(t, ceReceiver, rigOpts{pub: pub, noJS: true})
	good := `{"specversion":"1.0","id":"1","source":"/s","type":"THING"}`
	ceJSON := map[string]string{"Content-Type": "application/cloudevents+json"}
	cases := []struct {
		name  string
		h     map[string]string
		body  string
		field string
	}{
		{"binary without type", map[string]string{"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s"}, `{}`, "type"},
		{"binary without specversion", map[string]string{"ce-id": "1", "ce-source": "/s", "ce-type": "T"}, `{}`, "specversion"},
		{"binary bad type", map[string]string{"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "com.example.x"}, `{}`, "type"},
		{"binary bad time", map[string]string{"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "T", "ce-time": "yesterday"}, `{}`, "time"},
		{"binary datacontenttype header", map[string]string{"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "T", "ce-datacontenttype": "application/json"}, `{}`, "datacontenttype"},
		{"binary data not JSON", map[string]string{"Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "T"}, `hello`, "data"},
		{"structured without id", ceJSON, `{"specversion":"1.0","source":"/s","type":"T"}`, "id"},
		{"structured bad specversion", ceJSON, `{"specversion":"0.3","id":"1","source":"/s","type":"T"}`, "specversion"},
		{"structured bad source", ceJSON, `{"specversion":"1.0","id":"1","source":"a b","type":"T"}`, "source"},
		{"structured data_base64", ceJSON, `{"specversion":"1.0","id":"1","source":"/s","type":"T","data_base64":"AAAA"}`, "data_base64"},
		{"structured not an object", ceJSON, `[1]`, ""},
		{"batch second invalid", map[string]string{"Content-Type": "application/cloudevents-batch+json"}, `[` + good + `,{"specversion":"1.0","id":"2","source":"/s"}]`, "[1].type"},
		{"batch not a list", map[string]string{"Content-Type": "application/cloudevents-batch+json"}, good, "body"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := r.post("ce", c.h, []byte(c.body))
			code, field, msg := a.err()
			if a.status != 400 || field != c.field || code != "invalid_event" || msg == "" {
				t.Fatalf("got %d %s, want 400 naming %q", a.status, a.body, c.field)
			}
		})
	}
	if n := len(pub.got()); n != 0 {
		t.Fatalf("%d events published", n)
	}
}

func TestDecodeHeaderValue(t *testing.T) {
	for in, want := range map[string]string{
		"plain": "plain", "a%20b": "a b", "%e2%82%ac": "€", "%E2%82%AC": "€", "100%25": "100%", "%41%42": "AB",
	} {
		got, err := DecodeHeaderValue(in)
		if err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"%", "%4", "%zz", "%ff", "a%c3"} {
		if _, err := DecodeHeaderValue(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
