package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/events"
)

const ghReceiver = `
kind: Secret
name: gh
spec:
  data: {token: "It's a Secret to Everybody"}
---
kind: WebhookReceiver
name: github
spec:
  format: github
  auth: {type: hmac, preset: github, secret: {name: gh, key: token}}
`

func ghPost(r *rig, event, delivery, body string, sig string) answer {
	r.t.Helper()
	if sig == "" {
		sig = "sha256=" + hmacHex(ghSecret, body)
	}
	return r.post("github", map[string]string{
		"Content-Type": "application/json", HeaderGitHubEvent: event, HeaderGitHubDelivery: delivery,
		HeaderGitHubSignature256: sig,
	}, []byte(body))
}

// GitHub: a signed delivery becomes GITHUB_PUSH on the repository; a wrong
// or missing signature gets 401 and publishes nothing; the same delivery
// id again gets 200 and publishes nothing.
func TestGitHubDelivery(t *testing.T) {
	r := newRig(t, ghReceiver, rigOpts{})
	body := `{"ref":"refs/heads/main","repository":{"full_name":"acme/shop"}}`

	a := ghPost(r, "push", "d1", body, "sha256="+strings.Repeat("0", 64))
	if code, _, msg := a.err(); a.status != 401 || code != "unauthorized" || !strings.Contains(msg, "does not match") {
		t.Fatalf("wrong signature: %d %s", a.status, a.body)
	}
	a = r.post("github", map[string]string{"Content-Type": "application/json", HeaderGitHubEvent: "push", HeaderGitHubDelivery: "d1"}, []byte(body))
	if code, _, msg := a.err(); a.status != 401 || code != "unauthorized" || !strings.Contains(msg, "X-Hub-Signature-256 is missing") {
		t.Fatalf("missing signature: %d %s", a.status, a.body)
	}
	if n := len(r.stored()); n != 0 {
		t.Fatalf("%d events stored after refused requests", n)
	}

	a = ghPost(r, "push", "d1", body, "")
	if a.status != 202 {
		t.Fatalf("signed delivery: %d %s", a.status, a.body)
	}
	evs := r.stored()
	if len(evs) != 1 {
		t.Fatalf("%d events stored", len(evs))
	}
	ev := evs[0]
	if ev.Type != "GITHUB_PUSH" || ev.Data.ObjType != "repository" || ev.Data.ObjName != "acme/shop" || ev.Source != "/vigil/hooks/github" {
		t.Fatalf("event: %+v", ev)
	}
	if ev.Extensions[ExtReceiver] != "github" || ev.Extensions[ExtDeliveryID] != "d1" || ev.ID != "wh-"+hashKey("github", "d1") {
		t.Fatalf("extensions %v id %s", ev.Extensions, ev.ID)
	}
	var det Details
	if err := json.Unmarshal(ev.Data.EventDetails[DetailsKey], &det); err != nil {
		t.Fatal(err)
	}
	if det.DeliveryID != "d1" || det.Format != "github" || !strings.Contains(string(det.Payload), "acme/shop") {
		t.Fatalf("details %+v", det)
	}

	// A redelivery, long after JetStream's duplicate window would matter.
	a = ghPost(r, "push", "d1", body, "")
	var ok accepted
	_ = json.Unmarshal(a.body, &ok)
	if a.status != 200 || ok.Duplicates != 1 || ok.Accepted != 0 {
		t.Fatalf("repeat: %d %s", a.status, a.body)
	}
	if n := len(r.stored()); n != 1 {
		t.Fatalf("repeat stored an event: %d", n)
	}
	if a := ghPost(r, "ping", "d2", `{"zen":"ok"}`, ""); a.status != 202 {
		t.Fatalf("ping: %d %s", a.status, a.body)
	}
	if evs := r.stored(); len(evs) != 2 || evs[1].Type != "GITHUB_PING" {
		t.Fatalf("ping event: %v", evs)
	}
}

// A 202 is only written after Publish returned; a failing bus gives 503
// with Retry-After, and the delivery is not remembered, so its retry
// publishes.
func TestAcceptedOnlyAfterPublish(t *testing.T) {
	release := make(chan struct{})
	fail := make(chan bool, 1)
	fail <- false
	var returned time.Time
	pub := &fakePublisher{fn: func(ctx context.Context, ev *events.Event) (events.PublishResult, error) {
		f := <-fail
		fail <- f
		if f {
			return events.PublishResult{}, errBusDown
		}
		<-release
		returned = time.Now()
		return events.PublishResult{}, nil
	}}
	r := newRig(t, ghReceiver, rigOpts{pub: pub})
	done := make(chan answer, 1)
	go func() { done <- ghPost(r, "push", "x1", `{}`, "") }()
	select {
	case a := <-done:
		t.Fatalf("answered %d before the publish was acknowledged", a.status)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	a := <-done
	answered := time.Now()
	if a.status != 202 || returned.IsZero() || answered.Before(returned) {
		t.Fatalf("answer %d at %v, publish returned at %v", a.status, answered, returned)
	}

	<-fail
	fail <- true
	a = ghPost(r, "push", "x2", `{}`, "")
	if code, _, _ := a.err(); a.status != 503 || code != "unavailable" || a.header.Get("Retry-After") == "" {
		t.Fatalf("failing bus: %d %v %s", a.status, a.header, a.body)
	}
	<-fail
	fail <- false
	if a := ghPost(r, "push", "x2", `{}`, ""); a.status != 202 {
		t.Fatalf("retry after the bus came back: %d %s", a.status, a.body)
	}
	if n := len(pub.got()); n != 2 {
		t.Fatalf("published %d events, want 2", n)
	}
}

// A publish that never returns is cut by PublishTimeout: 503, not a hang.
func TestPublishTimeout(t *testing.T) {
	pub := &fakePublisher{fn: func(ctx context.Context, ev *events.Event) (events.PublishResult, error) {
		<-ctx.Done()
		return events.PublishResult{}, ctx.Err()
	}}
	r := newRig(t, ghReceiver, rigOpts{pub: pub})
	r.svc.opts.PublishTimeout = 100 * time.Millisecond
	if a := ghPost(r, "push", "t1", `{}`, ""); a.status != 503 || a.header.Get("Retry-After") == "" {
		t.Fatalf("%d %s", a.status, a.body)
	}
}

const amPayload = `{
  "version": "4", "groupKey": "{}:{alertname=\"HighLatency\"}", "truncatedAlerts": 0,
  "status": "firing", "receiver": "vigil",
  "groupLabels": {"alertname": "HighLatency"}, "commonLabels": {}, "commonAnnotations": {},
  "externalURL": "http://am:9093", "notification_reason": "new",
  "alerts": [
    {"status": "firing", "labels": {"alertname": "HighLatency", "instance": "web-1"}, "annotations": {},
     "startsAt": "2026-01-02T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://p", "fingerprint": "aaa"},
    {"status": "firing", "labels": {"alertname": "HighLatency", "instance": "web-2"}, "annotations": {},
     "startsAt": "2026-01-02T10:00:05Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://p", "fingerprint": "bbb"},
    {"status": "resolved", "labels": {"alertname": "DiskFull", "instance": "db-1"}, "annotations": {},
     "startsAt": "2026-01-02T09:00:00Z", "endsAt": "2026-01-02T10:01:00Z", "generatorURL": "http://p", "fingerprint": "ccc",
     "future_field": true}
  ]}`

// Alertmanager: two firing and one resolved alert give three events; the
// same delivery again gives none.
func TestAlertmanager(t *testing.T) {
	r := newRig(t, `
kind: WebhookReceiver
name: am
spec:
  format: alertmanager
  obj_name_path: labels.instance
  auth: {type: none}
`, rigOpts{})
	h := map[string]string{"Content-Type": "application/json"}
	a := r.post("am", h, []byte(amPayload))
	if a.status != 202 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	evs := r.stored()
	if len(evs) != 3 {
		t.Fatalf("%d events", len(evs))
	}
	want := [][3]string{{"ALERTMANAGER_FIRING", "alert", "web-1"}, {"ALERTMANAGER_FIRING", "alert", "web-2"}, {"ALERTMANAGER_RESOLVED", "alert", "db-1"}}
	for i, ev := range evs {
		if got := [3]string{ev.Type, ev.Data.ObjType, ev.Data.ObjName}; got != want[i] {
			t.Errorf("event %d: %v, want %v", i, got, want[i])
		}
	}
	a = r.post("am", h, []byte(amPayload))
	var ok accepted
	_ = json.Unmarshal(a.body, &ok)
	if a.status != 200 || ok.Duplicates != 3 {
		t.Fatalf("repeat: %d %s", a.status, a.body)
	}
	if n := len(r.stored()); n != 3 {
		t.Fatalf("repeat stored more: %d", n)
	}
	// The first alert resolving is a new notification of it.
	resolved := strings.Replace(amPayload, `"status": "firing", "labels": {"alertname": "HighLatency", "instance": "web-1"}, "annotations": {},
     "startsAt": "2026-01-02T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z"`, `"status": "resolved", "labels": {"alertname": "HighLatency", "instance": "web-1"}, "annotations": {},
     "startsAt": "2026-01-02T10:00:00Z", "endsAt": "2026-01-02T10:30:00Z"`, 1)
	if a := r.post("am", h, []byte(resolved)); a.status != 202 {
		t.Fatalf("resolution: %d %s", a.status, a.body)
	}
	if evs := r.stored(); len(evs) != 4 || evs[3].Type != "ALERTMANAGER_RESOLVED" || evs[3].Data.ObjName != "web-1" {
		t.Fatalf("after resolution: %d events", len(evs))
	}
	bad := strings.Replace(amPayload, `"status": "resolved"`, `"status": "gone"`, 1)
	if a := r.post("am", h, []byte(bad)); a.status != 400 {
		t.Fatalf("bad status: %d %s", a.status, a.body)
	} else if _, f, _ := a.err(); f != "alerts[2].status" {
		t.Fatalf("field %q", f)
	}
}

func TestAlertmanagerEventIDLabel(t *testing.T) {
	rc, err := compile("am", json.RawMessage(`{"format":"alertmanager","event_id_label":"alertname","auth":{"type":"none"}}`))
	if err != nil {
		t.Fatal(err)
	}
	items, err := rc.decode(&delivery{body: []byte(amPayload), now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range items {
		got = append(got, it.ev.Type)
	}
	if strings.Join(got, ",") != "HIGHLATENCY_FIRING,HIGHLATENCY_FIRING,DISKFULL_RESOLVED" {
		t.Fatal(got)
	}
}

// JSON receivers: event id by CEL, object by paths, delivery id from a
// header, and the body under webhook_received_details.
func TestJSONMapping(t *testing.T) {
	r := newRig(t, `
kind: Secret
name: ci
spec:
  data: {token: t0k3n}
---
kind: WebhookReceiver
name: ci
spec:
  format: json
  event_id_expr: '"BUILD_" + body.status'
  obj_type: pipeline
  obj_name_path: pipeline.name
  delivery_id_header: X-Request-Id
  auth: {type: token, header: X-Token, secret: {name: ci, key: token}}
`, rigOpts{})
	h := map[string]string{"Content-Type": "application/json", "X-Token": "t0k3n", "X-Request-Id": "r-1"}
	body := `{"status":"failed","pipeline":{"name":"shop-ci"},"items":[1,2]}`
	if a := r.post("ci", h, []byte(body)); a.status != 202 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	evs := r.stored()
	if len(evs) != 1 || evs[0].Type != "BUILD_FAILED" || evs[0].Data.ObjType != "pipeline" || evs[0].Data.ObjName != "shop-ci" {
		t.Fatalf("%+v", evs)
	}
	if a := r.post("ci", h, []byte(body)); a.status != 200 {
		t.Fatalf("repeat: %d", a.status)
	}
	h["X-Token"] = "wrong"
	if a := r.post("ci", h, []byte(body)); a.status != 401 {
		t.Fatalf("wrong token: %d", a.status)
	}
	h["X-Token"] = "t0k3n"
	h["X-Request-Id"] = "r-2"
	a := r.post("ci", h, []byte(`{"status":{"x":1}}`))
	if _, f, _ := a.err(); a.status != 400 || f != "event_id" {
		t.Fatalf("bad CEL result: %d %s", a.status, a.body)
	}
}

// TestJSONDefaultEventID: a json receiver that maps no event id makes
// WEBHOOK_RECEIVED events, with the delivery kept in their details.
func TestJSONDefaultEventID(t *testing.T) {
	r := newRig(t, `
kind: WebhookReceiver
name: plain
spec:
  format: json
  obj_type: app
  obj_name: shop
  auth: {type: none}
`, rigOpts{})
	h := map[string]string{"Content-Type": "application/json"}
	if a := r.post("plain", h, []byte(`{"anything": [1, 2]}`)); a.status != 202 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	evs := r.stored()
	if len(evs) != 1 || evs[0].Type != DefaultEventID || evs[0].Data.ObjType != "app" || evs[0].Data.ObjName != "shop" {
		t.Fatalf("%+v", evs)
	}
	var d struct {
		Receiver string          `json:"receiver"`
		Payload  json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(evs[0].Data.EventDetails[DetailsKey], &d); err != nil || d.Receiver != "plain" || !strings.Contains(string(d.Payload), `"anything"`) {
		t.Fatalf("details %s (%v)", evs[0].Data.EventDetails[DetailsKey], err)
	}
}

// TestCloudEventsHandshake: a cloudevents receiver answers the webhook
// abuse-protection handshake (OPTIONS with WebHook-Request-Origin); other
// formats answer 405, and a handshake without its origin is a 400.
func TestCloudEventsHandshake(t *testing.T) {
	r := newRig(t, `
kind: WebhookReceiver
name: ce
spec:
  format: cloudevents
  auth: {type: none}
  rate_limit: {rps: 2}
---
kind: WebhookReceiver
name: plain
spec:
  format: json
  auth: {type: none}
`, rigOpts{})
	a := r.do(http.MethodOptions, "ce", map[string]string{"WebHook-Request-Origin": "eventemitter.example.com"}, nil)
	if a.status != 200 || a.header.Get("WebHook-Allowed-Origin") != "eventemitter.example.com" ||
		a.header.Get("WebHook-Allowed-Rate") != "120" || a.header.Get("Allow") != "POST, OPTIONS" {
		t.Fatalf("handshake: %d %v %s", a.status, a.header, a.body)
	}
	a = r.do(http.MethodOptions, "ce", nil, nil)
	if _, f, _ := a.err(); a.status != 400 || f != "WebHook-Request-Origin" {
		t.Fatalf("handshake without origin: %d %s", a.status, a.body)
	}
	a = r.do(http.MethodOptions, "plain", map[string]string{"WebHook-Request-Origin": "x"}, nil)
	if a.status != 405 || a.header.Get("Allow") != "POST" {
		t.Fatalf("json receiver: %d %v", a.status, a.header)
	}
	if n := len(r.stored()); n != 0 {
		t.Fatalf("%d events stored by handshakes", n)
	}
}

// Standard Webhooks end to end, with the library fixtures.
func TestStandardWebhooksDelivery(t *testing.T) {
	r := newRig(t, `
kind: Secret
name: sw
spec:
  data: {key: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}
---
kind: WebhookReceiver
name: sw
spec:
  format: standard-webhooks
  event_id: TEST_EVENT
  auth: {type: hmac, preset: standard-webhooks, secret: {name: sw, key: key}}
`, rigOpts{})
	now := time.Unix(1_800_000_000, 0)
	r.setNow(now)
	ts := "1800000000"
	sign := func(id, ts, body string) string {
		k := mustB64(t, swSecret)
		return "v1," + b64(hmacRaw(k, id+"."+ts+"."+body))
	}
	h := map[string]string{"Content-Type": "application/json", "Webhook-Id": swMsgID, "Webhook-Timestamp": ts, "Webhook-Signature": sign(swMsgID, ts, swPayload)}
	if a := r.post("sw", h, []byte(swPayload)); a.status != 202 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	if a := r.post("sw", h, []byte(swPayload)); a.status != 200 {
		t.Fatalf("repeat: %d %s", a.status, a.body)
	}
	r.setNow(now.Add(10 * time.Minute))
	h["Webhook-Id"] = "msg_2"
	h["Webhook-Signature"] = sign("msg_2", ts, swPayload)
	if a := r.post("sw", h, []byte(swPayload)); a.status != 401 {
		t.Fatalf("stale: %d %s", a.status, a.body)
	}
	if n := len(r.stored()); n != 1 {
		t.Fatalf("%d events", n)
	}
}

// Hostile inputs get a 4xx that names what is wrong, and publish nothing.
func TestHostileInputs(t *testing.T) {
	r := newRig(t, `
kind: WebhookReceiver
name: j
spec:
  format: json
  event_id: THING
  max_body: 1Ki
  auth: {type: none}
---
kind: WebhookReceiver
name: ce
spec:
  format: cloudevents
  auth: {type: none}
---
kind: Secret
name: gh
spec:
  data: {token: "It's a Secret to Everybody"}
---
kind: WebhookReceiver
name: github
spec:
  format: github
  auth: {type: hmac, preset: github, secret: {name: gh, key: token}}
`, rigOpts{})
	js := map[string]string{"Content-Type": "application/json"}
	cases := []struct {
		name, recv string
		h          map[string]string
		body       string
		status     int
		field, msg string
	}{
		{"oversized", "j", js, `{"a":"` + strings.Repeat("x", 2000) + `"}`, 413, "", "1024-byte limit"},
		{"malformed JSON", "j", js, `{"a":`, 400, "body", "invalid JSON"},
		{"trailing data", "j", js, `{} {}`, 400, "body", "invalid JSON"},
		{"empty", "j", js, ``, 400, "body", "empty"},
		{"invalid UTF-8", "j", js, "{\"a\":\"\xff\xfe\"}", 400, "body", "UTF-8"},
		{"wrong content type", "j", map[string]string{"Content-Type": "text/plain"}, `{}`, 415, "Content-Type", "application/json"},
		{"broken content type", "j", map[string]string{"Content-Type": "application/json; ===="}, `{}`, 415, "Content-Type", "media type"},
		{"bad base64 signature", "github", map[string]string{"Content-Type": "application/json", HeaderGitHubEvent: "push", HeaderGitHubDelivery: "1", HeaderGitHubSignature256: "sha256=%%%"}, `{}`, 401, "", "not valid hex"},
		{"huge signature", "github", map[string]string{"Content-Type": "application/json", HeaderGitHubEvent: "push", HeaderGitHubDelivery: "1", HeaderGitHubSignature256: "sha256=" + strings.Repeat("a", 20000)}, `{}`, 401, "", "longer than"},
		{"ce bad percent", "ce", map[string]string{"Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": "a%zz", "ce-source": "/s", "ce-type": "T"}, `{}`, 400, "id", "percent-encoding"},
		{"ce percent to bad UTF-8", "ce", map[string]string{"Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": "a%ff", "ce-source": "/s", "ce-type": "T"}, `{}`, 400, "id", "UTF-8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := r.post(c.recv, c.h, []byte(c.body))
			_, field, msg := a.err()
			if a.status != c.status || field != c.field || !strings.Contains(msg, c.msg) {
				t.Fatalf("got %d %s, want %d field %q message with %q", a.status, a.body, c.status, c.field, c.msg)
			}
		})
	}
	if n := len(r.stored()); n != 0 {
		t.Fatalf("%d events stored", n)
	}
	a := r.post("nope", js, []byte(`{}`))
	if code, _, _ := a.err(); a.status != 404 || code != "not_found" || !strings.Contains(string(a.body), `"object":"WebhookReceiver/nope"`) {
		t.Fatalf("unknown receiver: %d %s", a.status, a.body)
	}
}

func TestRateLimitAndAllowList(t *testing.T) {
	r := newRig(t, `
kind: WebhookReceiver
name: slow
spec:
  format: json
  event_id: THING
  rate_limit: {rps: 1, burst: 2}
  auth: {type: none}
---
kind: WebhookReceiver
name: closed
spec:
  format: json
  event_id: THING
  allow_ips: [10.0.0.0/8, "192.0.2.1"]
  auth: {type: none}
---
kind: WebhookReceiver
name: local
spec:
  format: json
  event_id: THING
  allow_ips: [127.0.0.0/8, "::1"]
  auth: {type: none}
`, rigOpts{})
	now := time.Unix(1_800_000_000, 0)
	r.setNow(now)
	js := map[string]string{"Content-Type": "application/json"}
	for i := range 2 {
		if a := r.post("slow", js, []byte(`{}`)); a.status != 202 {
			t.Fatalf("request %d: %d", i, a.status)
		}
	}
	a := r.post("slow", js, []byte(`{}`))
	if code, _, _ := a.err(); a.status != 429 || code != "rate_limited" || a.header.Get("Retry-After") != "1" {
		t.Fatalf("over the limit: %d %v %s", a.status, a.header, a.body)
	}
	r.setNow(now.Add(1100 * time.Millisecond))
	if a := r.post("slow", js, []byte(`{}`)); a.status != 202 {
		t.Fatalf("after a second: %d", a.status)
	}
	if a := r.post("closed", js, []byte(`{}`)); a.status != 403 {
		t.Fatalf("not allowed: %d %s", a.status, a.body)
	}
	if a := r.post("local", js, []byte(`{}`)); a.status != 202 {
		t.Fatalf("allowed: %d %s", a.status, a.body)
	}
}

func TestValidate(t *testing.T) {
	cases := []struct{ spec, field, msg string }{
		{`{"format":"json","event_id":"X"}`, "spec.auth", "{type: none}"},
		{`{"format":"xml","auth":{"type":"none"}}`, "spec.format", "unknown format"},
		{`{"auth":{"type":"none"}}`, "spec.format", "required"},
		{`{"format":"json","event_id":"lower","auth":{"type":"none"}}`, "spec.event_id", "must match"},
		{`{"format":"json","event_id":"X","event_id_path":"a","auth":{"type":"none"}}`, "spec.event_id", "one of"},
		{`{"format":"json","event_id_expr":"body.","auth":{"type":"none"}}`, "spec.event_id_expr", "line 1"},
		{`{"format":"json","event_id_expr":"1 + 2","auth":{"type":"none"}}`, "spec.event_id_expr", "want a string"},
		{`{"format":"github","auth":{"type":"hmac","preset":"gitlab","secret":{"name":"s","key":"k"}}}`, "spec.auth.preset", "unknown preset"},
		{`{"format":"github","auth":{"type":"hmac","preset":"github"}}`, "spec.auth.secret", "required"},
		{`{"format":"github","auth":{"type":"hmac","preset":"github","header":"X","secret":{"name":"s","key":"k"}}}`, "spec.auth.header", "fixed by preset"},
		{`{"format":"github","auth":{"type":"hmac","algorithm":"md5","header":"X","secret":{"name":"s","key":"k"}}}`, "spec.auth.algorithm", "unknown algorithm"},
		{`{"format":"github","auth":{"type":"hmac","encoding":"b32","header":"X","secret":{"name":"s","key":"k"}}}`, "spec.auth.encoding", "hex or base64"},
		{`{"format":"github","auth":{"type":"none","secret":{"name":"s","key":"k"}}}`, "spec.auth.secret", "does not apply"},
		{`{"format":"github","auth":{"type":"basic","username":{"name":"s","key":"u"}}}`, "spec.auth.password", "required"},
		{`{"format":"github","auth":{"type":"token","secret":{"name":"s"}}}`, "spec.auth.secret.key", "required"},
		{`{"format":"github","auth":{"type":"none"},"allow_ips":["10.0.0.0/33"]}`, "spec.allow_ips[0]", "CIDR"},
		{`{"format":"github","auth":{"type":"none"},"max_body":"2Mi"}`, "spec.max_body", "between"},
		{`{"format":"github","auth":{"type":"none"},"rate_limit":{"rps":0}}`, "spec.rate_limit.rps", "above 0"},
		{`{"format":"github","auth":{"type":"none"},"dedup_window":"10ms"}`, "spec.dedup_window", "between"},
		{`{"format":"cloudevents","event_id":"X","auth":{"type":"none"}}`, "spec.format", "their own type"},
		{`{"format":"github","auth":{"type":"none"},"bogus":1}`, "spec.bogus", "unknown field"},
	}
	for _, c := range cases {
		err := validate(json.RawMessage(c.spec))
		if err == nil || !strings.Contains(err.Error(), c.field+":") || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: got %v, want %s: …%s…", c.spec, err, c.field, c.msg)
		}
	}
	for _, ok := range []string{
		`{"format":"json","auth":{"type":"none"}}`,
		`{"format":"github","auth":{"type":"hmac","preset":"github","secret":{"name":"gh","key":"token"}}}`,
		`{"format":"alertmanager","auth":{"type":"basic","username":{"name":"am","key":"u"},"password":{"name":"am","key":"p"}},"dedup_window":"48h","rate_limit":{"rps":50}}`,
		`{"format":"standard-webhooks","auth":{"type":"hmac","preset":"standard-webhooks","secret":{"name":"s","key":"k"},"tolerance":"10m"}}`,
		`{"format":"json","event_id_path":"kind","obj_name_expr":"headers[\"x-host\"]","auth":{"type":"hmac","header":"X-Sig","prefix":"sha512=","algorithm":"sha512","timestamp_header":"X-Ts","secret":{"name":"s","key":"k"}}}`,
	} {
		if err := validate(json.RawMessage(ok)); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

// The stored dedup record expires with the receiver's dedup_window.
func TestDedupRecordTTL(t *testing.T) {
	r := newRig(t, "", rigOpts{})
	d := r.svc.dedup
	ctx := context.Background()
	if err := d.record(ctx, "k1", time.Second); err != nil {
		t.Fatal(err)
	}
	if err := d.record(ctx, "k1", time.Second); err != nil {
		t.Fatalf("second record: %v", err)
	}
	if seen, err := d.seen(ctx, "k1"); err != nil || !seen {
		t.Fatalf("seen %v %v", seen, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		seen, err := d.seen(ctx, "k1")
		if err != nil {
			t.Fatal(err)
		}
		if !seen {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("key did not expire")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
