package webhook

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// fuzzReceiver compiles a receiver for the decoders' fuzz targets.
func fuzzReceiver(f *testing.F, spec string) *receiver {
	f.Helper()
	rc, err := compile("fz", json.RawMessage(spec))
	if err != nil {
		f.Fatal(err)
	}
	return rc
}

// checkDecoded holds for every decoder: an error is a 4xx request error,
// and every event decoded can be stored.
func checkDecoded(t *testing.T, items []item, err error) {
	t.Helper()
	if err != nil {
		var re *requestError
		if !errors.As(err, &re) || re.status < 400 || re.status > 499 {
			t.Fatalf("error is not a 4xx answer: %v", err)
		}
		if !utf8.ValidString(re.msg) && re.msg == "" {
			t.Fatalf("empty message")
		}
		return
	}
	for _, it := range items {
		if _, err := it.ev.Marshal(); err != nil {
			t.Fatalf("decoded event does not encode: %v", err)
		}
	}
}

func FuzzDecodeJSON(f *testing.F) {
	rc := fuzzReceiver(f, `{"format":"json","event_id_path":"kind","obj_name_expr":"string(body.name)","delivery_id_path":"id","auth":{"type":"none"}}`)
	f.Add(`{"kind":"build.done","name":"x","id":"1"}`)
	f.Add(`{"kind":{"a":1}}`)
	f.Add(`[1,2]`)
	f.Fuzz(func(t *testing.T, body string) {
		items, err := rc.decode(&delivery{h: http.Header{}, body: []byte(body), now: time.Unix(1e9, 0)})
		checkDecoded(t, items, err)
	})
}

func FuzzDecodeGitHub(f *testing.F) {
	rc := fuzzReceiver(f, `{"format":"github","auth":{"type":"none"}}`)
	f.Add("push", "72d3162e-cc78-11e3-81ab-4c9367dc0958", "application/json", `{"repository":{"full_name":"a/b"}}`)
	f.Add("pull_request", "1", "application/x-www-form-urlencoded", `payload=%7B%7D`)
	f.Fuzz(func(t *testing.T, event, deliveryID, ctype, body string) {
		h := http.Header{}
		h.Set(HeaderGitHubEvent, event)
		h.Set(HeaderGitHubDelivery, deliveryID)
		mt, err := mediaType(ctype)
		if err != nil {
			return
		}
		items, err := rc.decode(&delivery{h: h, body: []byte(body), now: time.Unix(1e9, 0), ctype: mt})
		checkDecoded(t, items, err)
	})
}

func FuzzDecodeAlertmanager(f *testing.F) {
	rc := fuzzReceiver(f, `{"format":"alertmanager","event_id_label":"alertname","auth":{"type":"none"}}`)
	f.Add(amPayload)
	f.Add(`{"version":"4","alerts":[{"status":"firing","fingerprint":"x","startsAt":"bad"}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		items, err := rc.decode(&delivery{h: http.Header{}, body: []byte(body), now: time.Unix(1e9, 0)})
		checkDecoded(t, items, err)
	})
}

func FuzzDecodeStandardWebhooks(f *testing.F) {
	rc := fuzzReceiver(f, `{"format":"standard-webhooks","auth":{"type":"none"}}`)
	f.Add(swMsgID, `{"type":"invoice.paid","data":{}}`)
	f.Add("", `{"type":"9"}`)
	f.Fuzz(func(t *testing.T, id, body string) {
		h := http.Header{}
		h.Set(HeaderWebhookID, id)
		items, err := rc.decode(&delivery{h: h, body: []byte(body), now: time.Unix(1e9, 0)})
		checkDecoded(t, items, err)
	})
}

func FuzzCloudEventsBinary(f *testing.F) {
	rc := fuzzReceiver(f, `{"format":"cloudevents","auth":{"type":"none"}}`)
	f.Add("1.0", "evt%2D1", "/src", "SERVER_DOWN", "caf%C3%A9", "application/json", `{"obj_type":"pool","obj_name":"web"}`)
	f.Add("1.0", "%", "/s", "x", "", "text/plain", `hello`)
	f.Fuzz(func(t *testing.T, specversion, id, source, typ, ext, ctype, body string) {
		h := http.Header{}
		for k, v := range map[string]string{"ce-specversion": specversion, "ce-id": id, "ce-source": source, "ce-type": typ, "ce-comment": ext, "Content-Type": ctype} {
			if v != "" {
				h.Set(k, v)
			}
		}
		items, err := rc.decode(&delivery{h: h, body: []byte(body), now: time.Unix(1e9, 0)})
		checkDecoded(t, items, err)
	})
}

func FuzzCloudEventsStructured(f *testing.F) {
	rc := fuzzReceiver(f, `{"format":"cloudevents","auth":{"type":"none"}}`)
	f.Add(`{"specversion":"1.0","id":"1","source":"/s","type":"THING","data":{"obj_name":"x"}}`)
	f.Add(`{"specversion":"1.0","id":"1","source":"/s","type":"THING","time":"2026-13-01T00:00:00Z"}`)
	f.Fuzz(func(t *testing.T, body string) {
		items, err := rc.decode(&delivery{h: http.Header{}, body: []byte(body), now: time.Unix(1e9, 0), ctype: "application/cloudevents+json"})
		checkDecoded(t, items, err)
	})
}

func FuzzCloudEventsBatch(f *testing.F) {
	rc := fuzzReceiver(f, `{"format":"cloudevents","auth":{"type":"none"}}`)
	f.Add(`[{"specversion":"1.0","id":"1","source":"/s","type":"THING"},{"specversion":"1.0","id":"2","source":"/s","type":"OTHER"}]`)
	f.Add(`[null]`)
	f.Fuzz(func(t *testing.T, body string) {
		items, err := rc.decode(&delivery{h: http.Header{}, body: []byte(body), now: time.Unix(1e9, 0), ctype: "application/cloudevents-batch+json"})
		checkDecoded(t, items, err)
	})
}

func FuzzDecodeHeaderValue(f *testing.F) {
	f.Add("caf%C3%A9%20%25")
	f.Add("%zz")
	f.Fuzz(func(t *testing.T, v string) {
		got, err := DecodeHeaderValue(v)
		if err != nil {
			return
		}
		if !utf8.ValidString(got) {
			t.Fatalf("%q decodes to invalid UTF-8", v)
		}
		if !strings.Contains(v, "%") && got != v {
			t.Fatalf("%q changed without escapes", v)
		}
	})
}

func FuzzParseStripeSignature(f *testing.F) {
	f.Add("t=1492774577,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39")
	f.Add("t=,v1=")
	f.Fuzz(func(t *testing.T, v string) {
		ts, sigs, err := ParseStripeSignature(v)
		if err == nil && (ts < 0 || len(sigs) == 0) {
			t.Fatalf("%q: accepted without a timestamp or signature", v)
		}
	})
}

func FuzzParseStandardSignatures(f *testing.F) {
	f.Add("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1a,AAAA")
	f.Add("v1,")
	f.Fuzz(func(t *testing.T, v string) {
		sigs, err := ParseStandardSignatures(v)
		if err == nil && len(sigs) == 0 {
			t.Fatalf("%q: accepted without a signature", v)
		}
	})
}

func FuzzParseSlackSignature(f *testing.F) {
	f.Add(slackSig)
	f.Add("v0=")
	f.Fuzz(func(t *testing.T, v string) {
		sig, err := ParseSlackSignature(v)
		if err == nil && (len(sig) == 0 || !strings.HasPrefix(v, "v0=")) {
			t.Fatalf("%q: accepted", v)
		}
	})
}

func FuzzParsePrefixedSignature(f *testing.F) {
	f.Add(ghSig, "sha256=", false)
	f.Add("c2lnbmF0dXJl", "", true)
	f.Fuzz(func(t *testing.T, v, prefix string, isBase64 bool) {
		sig, err := ParsePrefixedSignature(v, prefix, isBase64)
		if err == nil && (len(sig) == 0 || !strings.HasPrefix(v, prefix)) {
			t.Fatalf("%q: accepted", v)
		}
	})
}
