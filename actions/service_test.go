package actions

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/events"
	"github.com/vigilhq/vigil/vigiltest"
)

// rig is a rules service on an embedded NATS server with a real object
// store.
type rig struct {
	t      *testing.T
	bus    *events.Bus
	store  *config.Store
	svcs   []*Service
	groups []string // the ActionGroups applied
}

func newRig(t *testing.T) *rig {
	t.Helper()
	ctx := context.Background()
	bus := testBus(t)
	c, err := config.NewAESCipher(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	store, err := config.OpenStore(ctx, bus.Conn(), bus.JetStream(), config.StoreOptions{Registry: config.Kinds, Cipher: c})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, bus: bus, store: store}
}

// start starts one more service on the rig's bus.
func (r *rig) start(opt func(*ServiceOptions)) *Service {
	r.t.Helper()
	o := ServiceOptions{JS: r.bus.JetStream(), Store: r.store, Events: r.bus, Tick: 50 * time.Millisecond}
	if opt != nil {
		opt(&o)
	}
	svc, err := NewService(context.Background(), o)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(svc.Stop)
	r.svcs = append(r.svcs, svc)
	return svc
}

func (r *rig) apply(yaml string) {
	r.t.Helper()
	objs, err := config.ParseObjects(strings.NewReader(yaml), "test.yaml")
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.store.Apply(context.Background(), objs, config.ApplyOptions{User: "test"}); err != nil {
		r.t.Fatal(err)
	}
	for _, o := range objs {
		if o.Kind == KindActionGroup {
			r.groups = append(r.groups, o.Name)
		}
	}
}

// waitRules waits until every service has the named AlertConfigs and the
// ActionGroups applied so far.
func (r *rig) waitRules(names ...string) {
	r.t.Helper()
	eventually(r.t, "rules loaded", func() bool {
		for _, s := range r.svcs {
			for _, n := range names {
				if s.Engine().Rule(n) == nil {
					return false
				}
			}
			for _, g := range r.groups {
				if s.group(g) == nil {
					return false
				}
			}
		}
		return true
	})
}

func (r *rig) publish(id, objType, objName string, at time.Time, details any) *events.Event {
	r.t.Helper()
	ev, err := events.New(id, objType, objName, details, "/test", at)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.bus.Publish(context.Background(), ev); err != nil {
		r.t.Fatal(err)
	}
	return ev
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// receiver is an HTTP server on loopback that records what it is sent and
// answers from a script of statuses (the last one repeats).
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	got      []delivery
	at       []time.Time
}

type delivery struct {
	header http.Header
	body   []byte
	status int
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	rc := &receiver{statuses: statuses}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		rc.mu.Lock()
		status := http.StatusOK
		if len(rc.statuses) > 0 {
			status = rc.statuses[0]
			if len(rc.statuses) > 1 {
				rc.statuses = rc.statuses[1:]
			}
		}
		rc.got = append(rc.got, delivery{req.Header.Clone(), b, status})
		rc.at = append(rc.at, time.Now())
		rc.mu.Unlock()
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

func (rc *receiver) setStatuses(s ...int) {
	rc.mu.Lock()
	rc.statuses = s
	rc.mu.Unlock()
}

// verifyStandardWebhook checks a Standard Webhooks signature as a receiver
// does, written from the specification: the key is the base64 after
// "whsec_", the signed content "<webhook-id>.<webhook-timestamp>.<body>",
// and the header a space-separated list of "v1,<base64 HMAC-SHA256>".
func verifyStandardWebhook(secret string, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return fmt.Errorf("missing headers: id %q timestamp %q signature %q", id, ts, sigs)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("timestamp %q: %w", ts, err)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("timestamp %s is too far from now", ts)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		v, b64, ok := strings.Cut(s, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("no signature matches")
}

// TestStandardWebhooksVector checks the verifier the tests use, and the
// signer, against the specification's published vector.
func TestStandardWebhooksVector(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	const want = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	body := []byte(`{"test": 2432232314}`)
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,bm9wZQ== "+want)
	if err := verifyStandardWebhook(secret, h, body, time.Unix(1614265330, 0)); err != nil {
		t.Fatalf("verifier rejects the published vector: %v", err)
	}
	h.Set("webhook-signature", "v1,bm9wZQ==")
	if verifyStandardWebhook(secret, h, body, time.Unix(1614265330, 0)) == nil {
		t.Fatal("verifier accepts a wrong signature")
	}
	h.Set("webhook-signature", want)
	if verifyStandardWebhook(secret, h, []byte(`{"test": 2432232315}`), time.Unix(1614265330, 0)) == nil {
		t.Fatal("verifier accepts a changed body")
	}
	got, err := SignWebhook(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
	if err != nil || got != want {
		t.Fatalf("SignWebhook = %q, %v; want %q", got, err, want)
	}
}

const webhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// TestPipelineToRealReceivers: 3 SERVER_DOWN on pool web within 60s raise
// one alert whose actions reach an HTTP receiver (signed), a syslog
// listener over UDP and one over TCP, and an SMTP server; a 4th event in
// the throttle only counts; SERVER_UP resolves the alert and, with
// on_resolve, notifies again with the same receivers and new keys.
func TestPipelineToRealReceivers(t *testing.T) {
	r := newRig(t)
	hook := newReceiver(t)
	udpAddr, nextDatagram := listenUDP(t)
	tcpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcpGot := acceptFrames(t, tcpLn)
	serverTLS, clientTLS := loopbackTLS(t)
	smtpBE := &testSMTPBackend{Password: "s3cret"}
	smtpAddr := startSMTP(t, smtpBE, serverTLS)
	r.start(func(o *ServiceOptions) { o.TLS = clientTLS })
	r.apply(fmt.Sprintf(`
kind: Secret
name: hooks
spec:
  data: {signing: %q, smtp: s3cret}
---
kind: ActionGroup
name: page-ops
spec:
  level: medium
  on_resolve: true
  webhooks:
    - url: %s/alert
      secret: {name: hooks, key: signing}
  syslog:
    - {address: %q, protocol: udp}
    - {address: %q, protocol: tcp, facility: local3}
  email:
    server: %q
    from: vigil@example.com
    to: [ops@example.com]
    username: alice
    password: {name: hooks, key: smtp}
---
kind: AlertConfig
name: web-down
spec:
  events: [SERVER_DOWN]
  resolve_events: [SERVER_UP]
  obj_type: pool
  obj_name: web
  category: rolling_window
  threshold: 3
  window: 60s
  level: high
  action_group: page-ops
`, webhookSecret, hook.URL, udpAddr, tcpLn.Addr().String(), smtpAddr))
	r.waitRules("web-down")

	base := time.Now().UTC()
	for i := range 2 {
		r.publish("SERVER_DOWN", "pool", "web", base.Add(time.Duration(i)*time.Second), map[string]any{"se_hm_pool_details": map[string]any{"pool": "web"}})
	}
	r.publish("SERVER_DOWN", "pool", "other", base, nil) // another object
	time.Sleep(300 * time.Millisecond)
	if n := len(hook.deliveries()); n != 0 {
		t.Fatalf("2 events of 3 delivered %d webhooks", n)
	}
	r.publish("SERVER_DOWN", "pool", "web", base.Add(2*time.Second), nil)
	eventually(t, "the webhook", func() bool { return len(hook.deliveries()) == 1 })
	d := hook.deliveries()[0]
	if err := verifyStandardWebhook(webhookSecret, d.header, d.body, time.Now()); err != nil {
		t.Fatalf("webhook signature: %v", err)
	}
	var n Notice
	if err := json.Unmarshal(d.body, &n); err != nil {
		t.Fatal(err)
	}
	if n.Key != d.header.Get("webhook-id") || n.State != StateOn || len(n.Alert.Events) != 3 || n.Alert.Level != "ALERT_HIGH" || n.Alert.Threshold != 3 {
		t.Fatalf("notice: %+v", n)
	}

	// syslog over UDP and TCP, each with its own key; severity crit
	// (high), facility user and local3.
	keys := map[string]bool{n.Key: true}
	for name, line := range map[string][]byte{"udp": nextDatagram(), "tcp": <-tcpGot} {
		l := parseSyslogLine(t, line)
		fac := map[string]int{"udp": 1, "tcp": 19}[name]
		if l.PRI != fac*8+2 || !strings.HasPrefix(l.Params["key"], "act-") || keys[l.Params["key"]] || l.Msg != "web-down: 3 x SERVER_DOWN on pool web" {
			t.Errorf("syslog %s: %q", name, line)
		}
		keys[l.Params["key"]] = true
	}
	eventually(t, "the email", func() bool { _, m := smtpBE.got(); return len(m) == 1 })
	_, mails := smtpBE.got()
	if !strings.Contains(string(mails[0].Data), "Message-ID: <act-") || !mails[0].TLS || mails[0].User != "alice" ||
		!strings.Contains(string(mails[0].Data), "Subject: [vigil] ON web-down: 3 x SERVER_DOWN on pool web") {
		t.Fatalf("email: tls %v user %q\n%s", mails[0].TLS, mails[0].User, mails[0].Data)
	}

	// The 4th event inside the throttle only counts.
	r.publish("SERVER_DOWN", "pool", "web", base.Add(3*time.Second), nil)
	var alert Alert
	eventually(t, "the throttle count", func() bool {
		list, _ := r.svcs[0].Alerts(context.Background(), AlertFilter{Config: "web-down"})
		if len(list) == 1 {
			alert = list[0]
		}
		return len(list) == 1 && alert.ThrottleCount == 1
	})
	if alert.State != StateThrottled || len(alert.Events) != 4 {
		t.Fatalf("alert after the 4th: %+v", alert)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(hook.deliveries()); n != 1 {
		t.Fatalf("throttled event delivered: %d webhooks", n)
	}
	eventually(t, "outcomes recorded", func() bool {
		a, err := r.svcs[0].Alert(context.Background(), alert.ID)
		if err != nil {
			return false
		}
		delivered := 0
		for _, o := range a.Actions {
			if o.Status == OutcomeDelivered {
				delivered++
			}
		}
		return delivered == 4 // webhook, 2 syslog, email
	})

	// SERVER_UP resolves; on_resolve notifies with new keys.
	r.publish("SERVER_UP", "pool", "web", base.Add(4*time.Second), nil)
	eventually(t, "the resolve webhook", func() bool { return len(hook.deliveries()) == 2 })
	d2 := hook.deliveries()[1]
	var n2 Notice
	_ = json.Unmarshal(d2.body, &n2)
	if n2.State != StateResolved || n2.Key == n.Key || n2.Alert.Reason != "resolved" {
		t.Fatalf("resolve notice: %+v", n2)
	}
	a, err := r.svcs[0].Alert(context.Background(), alert.ID)
	if err != nil || a.State != StateResolved {
		t.Fatalf("alert after SERVER_UP: %+v, %v", a, err)
	}
}

// acceptFrames accepts connections on ln and sends each octet-counted
// frame it reads.
func acceptFrames(t *testing.T, ln net.Listener) <-chan []byte {
	t.Cleanup(func() { ln.Close() })
	out := make(chan []byte, 16)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				b, _ := io.ReadAll(conn)
				for _, f := range octetFrames(t, b) {
					out <- f
				}
			}()
		}
	}()
	return out
}

// TestRetriesAndDeadLetters: a receiver answering 503 then 200 gets one
// delivery; one answering 500 forever ends in the dead-letter stream after
// the configured tries, a 4xx at once, and replay from there delivers with
// the same key.
func TestRetriesAndDeadLetters(t *testing.T) {
	r := newRig(t)
	flaky := newReceiver(t, http.StatusServiceUnavailable, http.StatusOK)
	broken := newReceiver(t, http.StatusInternalServerError)
	gone := newReceiver(t, http.StatusNotFound)
	// A receiver that is not there: its error must not show the URL's
	// path, which for Slack is the secret.
	down := "http://127.0.0.1:9/secret-path"
	svc := r.start(nil)
	r.apply(fmt.Sprintf(`
kind: ActionGroup
name: hooks
spec:
  webhooks: [{url: %s}, {url: %s}, {url: %s}, {url: %s}]
  retry: {tries: 3, backoff: 100ms, max_backoff: 200ms}
---
kind: AlertConfig
name: any-down
spec:
  events: [SERVER_DOWN]
  action_group: hooks
`, flaky.URL, broken.URL, gone.URL, down))
	r.waitRules("any-down")
	r.publish("SERVER_DOWN", "pool", "web", time.Now(), nil)

	eventually(t, "3 dead letters", func() bool {
		dls, _, _ := svc.DeadLetters(context.Background(), 0, 10)
		return len(dls) == 3
	})
	if got := flaky.deliveries(); len(got) != 2 || got[0].status != 503 || got[1].status != 200 ||
		got[0].header.Get("webhook-id") != got[1].header.Get("webhook-id") {
		t.Fatalf("flaky receiver: %d tries", len(got))
	}
	if got := broken.deliveries(); len(got) != 3 {
		t.Fatalf("500 receiver: %d tries, want 3", len(got))
	}
	if got := gone.deliveries(); len(got) != 1 {
		t.Fatalf("404 receiver: %d tries, want 1 (no retry on 4xx)", len(got))
	}
	dls, _, _ := svc.DeadLetters(context.Background(), 0, 10)
	var dead DeadLetter
	for _, dl := range dls {
		if dl.Request.Index == 1 {
			dead = dl
		}
	}
	if dead.Tries != 3 || dead.Status != 500 || !strings.Contains(dead.Error, "500") {
		t.Fatalf("dead letter: %+v", dead)
	}
	for _, dl := range dls {
		if strings.Contains(dl.Error, "/secret-path") {
			t.Errorf("a dead letter's error shows the URL's path: %s", dl.Error)
		}
	}
	key := broken.deliveries()[0].header.Get("webhook-id")
	if dead.Request.Key != key {
		t.Fatalf("dead letter key %q, receiver saw %q", dead.Request.Key, key)
	}

	broken.setStatuses(http.StatusOK)
	if _, err := svc.Replay(context.Background(), dead.Seq); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the replay", func() bool { return len(broken.deliveries()) == 4 })
	if got := broken.deliveries()[3]; got.status != 200 || got.header.Get("webhook-id") != key {
		t.Fatalf("replay: status %d key %q, want 200 %q", got.status, got.header.Get("webhook-id"), key)
	}
	if _, err := svc.Replay(context.Background(), dead.Seq); err == nil {
		t.Fatal("a dead letter replays twice")
	}
	dls, _, _ = svc.DeadLetters(context.Background(), 0, 10)
	if len(dls) != 2 {
		t.Fatalf("%d dead letters after the replay, want 2", len(dls))
	}
}

// TestTwoEnginesActAsOne: two services on one NATS share the events of a
// burst over 20 objects, 3 each with a threshold of 3: each object gives
// one alert and one webhook, and each service decided a share.
func TestTwoEnginesActAsOne(t *testing.T) {
	r := newRig(t)
	hook := newReceiver(t)
	a, b := r.start(nil), r.start(nil)
	r.apply(fmt.Sprintf(`
kind: ActionGroup
name: hook
spec:
  webhooks: [{url: %s}]
---
kind: AlertConfig
name: burst
spec:
  events: [SERVER_DOWN]
  category: rolling_window
  threshold: 3
  window: 1h
  action_group: hook
`, hook.URL))
	r.waitRules("burst")
	now := time.Now()
	var evs []*events.Event
	for round := range 4 {
		for obj := range 20 {
			ev, err := events.New("SERVER_DOWN", "pool", fmt.Sprintf("p%02d", obj), nil, "/test", now.Add(time.Duration(round)*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			evs = append(evs, ev)
		}
	}
	if _, err := r.bus.PublishBatch(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	eventually(t, "all decided", func() bool { return a.Handled()+b.Handled() == 80 })
	eventually(t, "20 webhooks", func() bool { return len(hook.deliveries()) >= 20 })
	time.Sleep(300 * time.Millisecond)
	seen := map[string]bool{}
	for _, d := range hook.deliveries() {
		var n Notice
		_ = json.Unmarshal(d.body, &n)
		if seen[n.Alert.ObjName] {
			t.Errorf("object %s notified twice", n.Alert.ObjName)
		}
		seen[n.Alert.ObjName] = true
	}
	list, err := a.Alerts(context.Background(), AlertFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 20 {
		t.Fatalf("%d alerts, want 20", len(list))
	}
	for _, al := range list {
		if al.ThrottleCount != 1 || len(al.Events) != 4 {
			t.Errorf("alert %s: throttle_count %d, %d events; want 1 and 4", al.ObjName, al.ThrottleCount, len(al.Events))
		}
	}
	if a.Handled() == 0 || b.Handled() == 0 {
		t.Fatalf("one engine did all the work: %d and %d", a.Handled(), b.Handled())
	}
	t.Logf("engines decided %d and %d matches", a.Handled(), b.Handled())
}

// TestTrySideEffectFree: Test tells what each config would do and writes
// nothing.
func TestTrySideEffectFree(t *testing.T) {
	r := newRig(t)
	hook := newReceiver(t)
	svc := r.start(nil)
	r.apply(fmt.Sprintf(`
kind: ActionGroup
name: hook
spec:
  webhooks: [{url: %s}]
---
kind: AlertConfig
name: web-down
spec:
  events: [SERVER_DOWN]
  obj_name: "web*"
  action_group: hook
---
kind: AlertConfig
name: big-only
spec:
  events: [SERVER_DOWN]
  condition: details.se_hm_pool_details.percent_servers_up < 50
`, hook.URL))
	r.waitRules("web-down", "big-only")
	ev, _ := events.New("SERVER_DOWN", "pool", "web1", map[string]any{"se_hm_pool_details": map[string]any{"percent_servers_up": 80}}, "/test", time.Now())
	res, err := svc.Test(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]TestResult{}
	for _, x := range res {
		got[x.Config] = x
	}
	if w := got["web-down"]; !w.Matched || w.Outcome != "raise" || len(w.Actions) != 1 || w.Actions[0].Target != "webhooks[0]" {
		t.Fatalf("web-down: %+v", w)
	}
	if b := got["big-only"]; b.Matched || b.Reason != "condition is false" {
		t.Fatalf("big-only: %+v", b)
	}
	time.Sleep(200 * time.Millisecond)
	if list, _ := svc.Alerts(context.Background(), AlertFilter{}); len(list) != 0 || len(hook.deliveries()) != 0 {
		t.Fatalf("Test wrote %d alerts and sent %d webhooks", len(list), len(hook.deliveries()))
	}
}

// TestSilenceByLabel: a Silence on a label (a CloudEvents extension)
// holds back the actions of the alerts its events raise, in the running
// service, and lets the others through.
func TestSilenceByLabel(t *testing.T) {
	r := newRig(t)
	hook := newReceiver(t)
	svc := r.start(nil)
	r.apply(fmt.Sprintf(`
kind: ActionGroup
name: hook
spec:
  webhooks: [{url: %s}]
---
kind: AlertConfig
name: down
spec:
  events: [SERVER_DOWN]
  action_group: hook
---
kind: Silence
name: staging
spec:
  matchers: [{field: label.env, value: staging}]
  ends: %s
  comment: staging is being rebuilt
`, hook.URL, time.Now().Add(time.Hour).UTC().Format(time.RFC3339)))
	r.waitRules("down")
	eventually(t, "the silence", func() bool { return svc.Engine().SilencesUseLabels() })
	for _, obj := range []string{"staged", "prod"} {
		ev, err := events.New("SERVER_DOWN", "pool", obj, nil, "/test", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if obj == "staged" {
			ev.Extensions = map[string]any{"env": "staging"}
		}
		if _, err := r.bus.Publish(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "2 alerts", func() bool {
		list, _ := svc.Alerts(context.Background(), AlertFilter{})
		return len(list) == 2
	})
	eventually(t, "the prod webhook", func() bool { return len(hook.deliveries()) >= 1 })
	time.Sleep(300 * time.Millisecond)
	if got := hook.deliveries(); len(got) != 1 || !strings.Contains(string(got[0].body), `"obj_name":"prod"`) {
		t.Fatalf("%d deliveries; want only prod's", len(got))
	}
}

// TestSlackPublishEventAutoscale: a Slack incoming webhook (its URL from
// a Secret) gets the templated text; publish_event chains an event whose
// id is the action's key, which a second AlertConfig turns into an alert;
// autoscale hands the alert to the autoscale manager, whose answer is the
// action's output.
func TestSlackPublishEventAutoscale(t *testing.T) {
	r := newRig(t)
	slack := newReceiver(t)
	as := &autoscaler{}
	svc := r.start(func(o *ServiceOptions) { o.Autoscale = as })
	r.apply(fmt.Sprintf(`
kind: Secret
name: slack
spec:
  data: {url: %q}
---
kind: ActionGroup
name: chain
spec:
  slack:
    url_secret: {name: slack, key: url}
    text: "{{.Config}} on {{.Alert.ObjName}}: {{.State}}"
  publish_event:
    event_id: POOL_DEGRADED
    details: '{"degraded": {"alert": {{json .ID}}, "events": {{len .Alert.Events}}}}'
  autoscale: true
---
kind: AlertConfig
name: down
spec:
  events: [SERVER_DOWN]
  action_group: chain
---
kind: AlertConfig
name: degraded
spec:
  custom_events: [POOL_DEGRADED]
  events: [POOL_DEGRADED]
  condition: details.degraded.events == 1
`, slack.URL+"/services/T0/B0/secret"))
	r.waitRules("down", "degraded")
	r.publish("SERVER_DOWN", "pool", "web", time.Now(), nil)

	eventually(t, "the slack message", func() bool { return len(slack.deliveries()) == 1 })
	var msg map[string]string
	if err := json.Unmarshal(slack.deliveries()[0].body, &msg); err != nil || msg["text"] != "down on web: ON" {
		t.Fatalf("slack body %s (%v)", slack.deliveries()[0].body, err)
	}
	var chained Alert
	eventually(t, "the chained alert", func() bool {
		list, _ := svc.Alerts(context.Background(), AlertFilter{Config: "degraded"})
		if len(list) == 1 {
			chained = list[0]
		}
		return len(list) == 1
	})
	if chained.ObjType != "pool" || chained.ObjName != "web" || len(chained.Events) != 1 {
		t.Fatalf("chained alert: %+v", chained)
	}
	list, _ := svc.Alerts(context.Background(), AlertFilter{Config: "down"})
	if len(list) != 1 {
		t.Fatalf("%d down alerts", len(list))
	}
	// A new alert is indexed by its id, so reading it needs no scan.
	eventually(t, "the alert's index", func() bool {
		config, key, ok := svc.store.LookupIndex(list[0].ID)
		return ok && config == "down" && key == list[0].Key
	})
	eventually(t, "3 outcomes", func() bool {
		a, err := svc.Alert(context.Background(), list[0].ID)
		if err != nil || len(a.Actions) != 3 {
			return false
		}
		for _, o := range a.Actions {
			if o.Status != OutcomeDelivered {
				return false
			}
		}
		return true
	})
	// The chained event's id is the publish_event action's key.
	a, _ := svc.Alert(context.Background(), list[0].ID)
	var key string
	for _, o := range a.Actions {
		switch o.Kind {
		case ActionPublishEvent:
			key = o.Key
		case ActionAutoscale:
			if o.Output != "scale-out of web" {
				t.Fatalf("autoscale outcome %+v", o)
			}
		}
	}
	if q := as.requests(); len(q) != 1 || q[0].Config != "down" || q[0].ObjType != "pool" || q[0].Notice.Alert.ObjName != "web" {
		t.Fatalf("autoscale requests %+v", q)
	}
	stored, _, err := r.bus.List(context.Background(), events.Filter{EventID: "POOL_DEGRADED"})
	if err != nil || len(stored) != 1 {
		t.Fatalf("chained events: %d, %v", len(stored), err)
	}
	var ev events.Event
	if err := json.Unmarshal(stored[0].Data, &ev); err != nil || ev.ID != key || ev.Source != "/vigil/actions/chain" {
		t.Fatalf("chained event %s (%v), want id %s", stored[0].Data, err, key)
	}
}

// TestRetryAfterHonoured: a 429 with Retry-After: 1 delays the next try
// by a second although the group's backoff is 100ms.
func TestRetryAfterHonoured(t *testing.T) {
	r := newRig(t)
	hook := newReceiver(t, http.StatusTooManyRequests, http.StatusOK)
	r.start(nil)
	r.apply(fmt.Sprintf(`
kind: ActionGroup
name: hook
spec:
  webhooks: [{url: %s}]
  retry: {tries: 3, backoff: 100ms, max_backoff: 200ms}
---
kind: AlertConfig
name: any
spec:
  events: [SERVER_DOWN]
  action_group: hook
`, hook.URL))
	r.waitRules("any")
	r.publish("SERVER_DOWN", "pool", "web", time.Now(), nil)
	eventually(t, "the second try", func() bool { return len(hook.deliveries()) == 2 })
	hook.mu.Lock()
	defer hook.mu.Unlock()
	if len(hook.got) != 2 || hook.got[0].status != 429 || hook.got[1].status != 200 {
		t.Fatalf("tries: %+v", hook.got)
	}
	if gap := hook.at[1].Sub(hook.at[0]); gap < 950*time.Millisecond {
		t.Fatalf("second try %s after the 429, want at least its Retry-After of 1s", gap)
	}
}

// TestBackoff: exponential from the base, capped, with equal jitter; a
// longer Retry-After wins, up to an hour.
func TestBackoff(t *testing.T) {
	base, limit := time.Second, 10*time.Second
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 9: 10 * time.Second} {
		for range 50 {
			if d := Backoff(n, base, limit, 0); d < want/2 || d > want {
				t.Fatalf("try %d: %s, want within [%s, %s]", n, d, want/2, want)
			}
		}
	}
	if d := Backoff(1, base, limit, 30*time.Second); d != 30*time.Second {
		t.Fatalf("Retry-After 30s: %s", d)
	}
	if d := Backoff(1, base, limit, 5*time.Hour); d != time.Hour {
		t.Fatalf("Retry-After 5h: %s, want the 1h cap", d)
	}
}

// TestDismissAndOnceAfterInService: once_after acts from the service's
// ticker with the events collected meanwhile; a dismissed alert stops and
// the next match raises a new one.
func TestDismissAndOnceAfterInService(t *testing.T) {
	r := newRig(t)
	hook := newReceiver(t)
	svc := r.start(nil)
	r.apply(fmt.Sprintf(`
kind: ActionGroup
name: hook
spec:
  webhooks: [{url: %s}]
---
kind: AlertConfig
name: batch
spec:
  events: [SERVER_DOWN]
  mode: {once_after: 1s}
  action_group: hook
`, hook.URL))
	r.waitRules("batch")
	for range 3 {
		r.publish("SERVER_DOWN", "pool", "web", time.Now(), nil)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(hook.deliveries()); n != 0 {
		t.Fatalf("once_after acted at once: %d", n)
	}
	eventually(t, "the once_after delivery", func() bool { return len(hook.deliveries()) == 1 })
	var n Notice
	_ = json.Unmarshal(hook.deliveries()[0].body, &n)
	if len(n.Alert.Events) != 3 {
		t.Fatalf("once_after delivered %d events, want 3", len(n.Alert.Events))
	}
	a, err := svc.Dismiss(context.Background(), n.ID)
	if err != nil || a.State != StateDismissed {
		t.Fatalf("dismiss: %+v %v", a, err)
	}
	if _, err := svc.Dismiss(context.Background(), "alert-nope"); !errors.Is(err, ErrNoAlert) {
		t.Fatalf("dismiss of an unknown alert: %v", err)
	}
	r.publish("SERVER_DOWN", "pool", "web", time.Now(), nil)
	eventually(t, "a new alert", func() bool {
		list, _ := svc.Alerts(context.Background(), AlertFilter{})
		return len(list) == 1 && list[0].ID != n.ID && list[0].State == StateOn
	})
}

// TestPublishEventLoopEnds: an AlertConfig whose action publishes the
// event that raises it stops after MaxHops events, and says so on the
// alert; a missing ActionGroup is recorded the same way.
func TestPublishEventLoopEnds(t *testing.T) {
	r := newRig(t)
	svc := r.start(nil)
	r.apply(`
kind: ActionGroup
name: echo
spec:
  publish_event: {event_id: LOOP_EVENT}
---
kind: AlertConfig
name: loop
spec:
  custom_events: [LOOP_EVENT]
  events: [LOOP_EVENT]
  throttle: 0s
  action_group: echo
---
kind: AlertConfig
name: orphan
spec:
  custom_events: [ORPHAN_EVENT]
  events: [ORPHAN_EVENT]
  action_group: no-such-group
`)
	r.waitRules("loop", "orphan")
	r.publish("LOOP_EVENT", "pool", "web", time.Now(), nil)
	r.publish("ORPHAN_EVENT", "pool", "web", time.Now(), nil)
	var refused ActionOutcome
	eventually(t, "the refused publish", func() bool {
		list, _ := svc.Alerts(context.Background(), AlertFilter{Config: "loop"})
		if len(list) != 1 {
			return false
		}
		a, err := svc.Alert(context.Background(), list[0].ID)
		if err != nil {
			return false
		}
		for _, o := range a.Actions {
			if o.Status == OutcomeFailed {
				refused = o
				return true
			}
		}
		return false
	})
	if !strings.Contains(refused.Error, "publish_event actions") {
		t.Fatalf("refusal: %+v", refused)
	}
	time.Sleep(500 * time.Millisecond)
	stored, _, err := r.bus.List(context.Background(), events.Filter{EventID: "LOOP_EVENT"})
	if err != nil || len(stored) != MaxHops+1 {
		t.Fatalf("%d LOOP_EVENT events (%v), want the first and %d published", len(stored), err, MaxHops)
	}
	eventually(t, "the missing ActionGroup on its alert", func() bool {
		list, _ := svc.Alerts(context.Background(), AlertFilter{Config: "orphan"})
		if len(list) != 1 {
			return false
		}
		a, err := svc.Alert(context.Background(), list[0].ID)
		return err == nil && len(a.Actions) == 1 && strings.Contains(a.Actions[0].Error, `ActionGroup "no-such-group" does not exist`)
	})
}

// TestFailingRuleCountedNotFlooded: a condition that fails on every event
// (a details key the events lack) is counted per event and logged at most
// once a minute.
func TestFailingRuleCountedNotFlooded(t *testing.T) {
	r := newRig(t)
	var logs vigiltest.SyncBuffer
	svc := r.start(func(o *ServiceOptions) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	r.apply(`
kind: AlertConfig
name: picky
spec:
  events: [SERVER_DOWN]
  condition: details.se_hm_pool_details.percent_servers_up < 50
`)
	r.waitRules("picky")
	for range 5 {
		r.publish("SERVER_DOWN", "pool", "web", time.Now(), nil)
	}
	eventually(t, "5 failures counted", func() bool {
		return testutil.ToFloat64(svc.metrics.ruleErrors.WithLabelValues("picky")) == 5
	})
	if n := strings.Count(logs.String(), "rule fails on event"); n != 1 {
		t.Fatalf("%d log lines for 5 failures, want 1:\n%s", n, logs.String())
	}
}

// autoscaler records what the pipeline hands to the autoscale manager.
type autoscaler struct {
	mu   sync.Mutex
	reqs []ActionRequest
}

func (a *autoscaler) Autoscale(_ context.Context, q *ActionRequest) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reqs = append(a.reqs, *q)
	return "scale-out of " + q.Notice.Alert.ObjName, nil
}

func (a *autoscaler) requests() []ActionRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]ActionRequest(nil), a.reqs...)
}
