package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/vigilhq/vigil/actions"
)

// hookRecorder is a webhook receiver on loopback that records each
// delivery's webhook-id and body.
type hookRecorder struct {
	*httptest.Server
	mu   sync.Mutex
	ids  []string
	body [][]byte
	hdr  []http.Header
}

func newHookRecorder(t *testing.T) *hookRecorder {
	h := &hookRecorder{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.ids = append(h.ids, r.Header.Get("webhook-id"))
		h.body = append(h.body, b)
		h.hdr = append(h.hdr, r.Header.Clone())
		h.mu.Unlock()
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookRecorder) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ids)
}

func postEvent(t *testing.T, s *server, body string) bool {
	t.Helper()
	req, _ := http.NewRequest("POST", s.API+"/api/v1/events", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusCreated
}

func getJSON(t *testing.T, s *server, path string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.API+path, nil)
	req.Header.Set("Authorization", "Bearer "+s.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, b)
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const signingSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// checkSignature verifies a Standard Webhooks signature the way the
// specification describes (the actions package's tests check this
// reading against the published vector).
func checkSignature(h http.Header, body []byte) bool {
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(signingSecret, "whsec_"))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(h.Get("webhook-id") + "." + h.Get("webhook-timestamp") + "."))
	m.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	for _, s := range strings.Fields(h.Get("webhook-signature")) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return true
		}
	}
	return false
}

func serverDown(obj string, pct int) string {
	return fmt.Sprintf(`{"event_id":"SERVER_DOWN","obj_type":"pool","obj_name":%q,"event_details":{"se_hm_pool_details":{"pool":%q,"percent_servers_up":%d,"server":{"ip":{"addr":"10.0.0.5","type":"V4"},"port":8080}}}}`, obj, obj, pct)
}

// TestAlertRunsScriptAndWebhook: "3 SERVER_DOWN on pool web within 60s"
// with an ActionGroup running a ControlScript and a signed webhook gives
// one alert, one execution whose sys.argv[1] holds the alert with its 3
// events in Avi's shape, and one signed delivery; a 4th event in the
// throttle only counts; SERVER_UP resolves the alert.
func TestAlertRunsScriptAndWebhook(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the sandbox needs root")
	}
	hook := newHookRecorder(t)
	s := startServer(t, t.TempDir(), nil)
	yaml := scriptYAML("on-down", `import sys, json
alert = json.loads(sys.argv[1])
print("alert", alert["name"], alert["level"], alert["reason"], alert["obj_name"], alert["threshold"], alert["throttle_count"])
for e in alert["events"]:
    print("event", e["event_id"], e["obj_name"], e["report_timestamp"], sorted(e["event_details"]))`, "") + fmt.Sprintf(`---
kind: Secret
name: signing
spec:
  data: {key: %q}
---
kind: ActionGroup
name: ops
spec:
  controlscript: on-down
  webhooks:
    - url: %s/hook
      secret: {name: signing, key: key}
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
  action_group: ops
`, signingSecret, hook.URL)
	if _, errOut, code := s.CLI(t, yaml, "apply", "-f", "-"); code != 0 {
		t.Fatal(errOut)
	}
	time.Sleep(200 * time.Millisecond) // the engine follows the config
	// Trying the event first changes nothing.
	out, errOut, code := s.CLI(t, serverDown("web", 50), "alerts", "test", "-f", "-")
	if code != 0 || !strings.Contains(out, "web-down") || !strings.Contains(out, "collect") {
		t.Fatalf("alerts test: %d %q %q", code, out, errOut)
	}
	for range 3 {
		if !postEvent(t, s, serverDown("web", 50)) {
			t.Fatal("publish failed")
		}
	}
	waitFor(t, "the webhook", 20*time.Second, func() bool { return hook.count() == 1 })
	hook.mu.Lock()
	if !checkSignature(hook.hdr[0], hook.body[0]) {
		t.Errorf("webhook signature does not verify: %v", hook.hdr[0])
	}
	hook.mu.Unlock()

	type execution struct {
		ID      string          `json:"id"`
		Status  string          `json:"status"`
		Trigger string          `json:"trigger"`
		Alert   json.RawMessage `json:"alert"`
		Stdout  string          `json:"stdout"`
	}
	var execs struct {
		Items []execution `json:"items"`
	}
	waitFor(t, "the execution", 20*time.Second, func() bool {
		getJSON(t, s, "/api/v1/executions", &execs)
		return len(execs.Items) == 1 && execs.Items[0].Status == "succeeded"
	})
	ex := execs.Items[0]
	var avi actions.AviAlert
	if err := json.Unmarshal(ex.Alert, &avi); err != nil {
		t.Fatal(err)
	}
	if ex.Trigger != "alert" || len(avi.Events) != 3 || avi.Level != "ALERT_HIGH" || avi.Reason != "threshold_exceeded" ||
		avi.ObjName != "web" || avi.Threshold != 3 || !strings.HasPrefix(avi.Name, "web-down-") {
		t.Fatalf("execution alert: %s", ex.Alert)
	}
	if strings.Count(ex.Stdout, "event SERVER_DOWN web ") != 3 || !strings.Contains(ex.Stdout, "['se_hm_pool_details']") {
		t.Fatalf("script output:\n%s", ex.Stdout)
	}

	// A 4th event in the throttle only counts.
	postEvent(t, s, serverDown("web", 25))
	type alert struct {
		ID                 string `json:"id"`
		State              string `json:"state"`
		ThrottleCount      int    `json:"throttle_count"`
		ActionScriptOutput string `json:"action_script_output"`
		Actions            []struct {
			Kind, Status, Execution string
		} `json:"actions"`
	}
	var alerts struct {
		Items []alert `json:"items"`
	}
	waitFor(t, "the throttle count", 10*time.Second, func() bool {
		getJSON(t, s, "/api/v1/alerts", &alerts)
		return len(alerts.Items) == 1 && alerts.Items[0].ThrottleCount == 1
	})
	a := alerts.Items[0]
	if a.State != "THROTTLED" {
		t.Fatalf("alert: %+v", a)
	}
	waitFor(t, "the outcomes on the alert", 10*time.Second, func() bool {
		getJSON(t, s, "/api/v1/alerts/"+a.ID, &a)
		return strings.Contains(a.ActionScriptOutput, "alert web-down-") && len(a.Actions) == 2
	})
	for _, o := range a.Actions {
		if o.Status != "delivered" || (o.Kind == "controlscript") != (o.Execution == ex.ID) {
			t.Errorf("outcome %+v", o)
		}
	}
	time.Sleep(300 * time.Millisecond)
	getJSON(t, s, "/api/v1/executions", &execs)
	if len(execs.Items) != 1 || hook.count() != 1 {
		t.Fatalf("throttled event acted: %d executions, %d webhooks", len(execs.Items), hook.count())
	}

	// SERVER_UP resolves it.
	postEvent(t, s, `{"event_id":"SERVER_UP","obj_type":"pool","obj_name":"web"}`)
	waitFor(t, "the resolve", 10*time.Second, func() bool {
		var one alert
		getJSON(t, s, "/api/v1/alerts/"+a.ID, &one)
		return one.State == "RESOLVED"
	})
	if hook.count() != 1 {
		t.Fatalf("resolve without on_resolve notified: %d webhooks", hook.count())
	}
	req, _ := http.NewRequest("GET", s.API+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+s.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`vigil_actions_total{kind="webhook",result="delivered"} 1`,
		`vigil_actions_total{kind="controlscript",result="delivered"} 1`,
		`vigil_rules_decisions_total{outcome="act"} 1`,
		`vigil_rules_decisions_total{outcome="throttle"} 1`,
		`vigil_rules_decisions_total{outcome="resolve"} 1`,
		`vigil_stream_messages{stream="VIGIL_DEADLETTERS"} 0`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	term(t, s)
}

// TestKillWithAlertsFiring: kill -9 of vigil serve in a stream of events
// whose every one raises an action. After a restart the receiver has seen
// the idempotency key of every acknowledged event's action, and a repeated
// delivery carries a key it saw before.
func TestKillWithAlertsFiring(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test")
	}
	hook := newHookRecorder(t)
	dir := t.TempDir()
	s := startServer(t, dir, nil)
	yaml := fmt.Sprintf(`kind: ActionGroup
name: hook
spec:
  webhooks: [{url: %s}]
---
kind: AlertConfig
name: every
spec:
  events: [SERVER_DOWN]
  throttle: 0s
  action_group: hook
`, hook.URL)
	if _, errOut, code := s.CLI(t, yaml, "apply", "-f", "-"); code != 0 {
		t.Fatal(errOut)
	}
	time.Sleep(200 * time.Millisecond)

	const objects = 10
	var (
		mu      sync.Mutex
		acked   = map[string]string{} // event id → object
		pending = map[string]string{}
		n       atomic.Int64
		stop    atomic.Bool
		wg      sync.WaitGroup
	)
	send := func(srv *server, id, obj string) bool {
		return postEvent(t, srv, fmt.Sprintf(`{"id":%q,"event_id":"SERVER_DOWN","obj_type":"pool","obj_name":%q}`, id, obj))
	}
	for c := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				id, obj := fmt.Sprintf("ev-%d-%d", c, i), fmt.Sprintf("p%d", (c+i)%objects)
				mu.Lock()
				pending[id] = obj
				mu.Unlock()
				if !send(s, id, obj) {
					return
				}
				mu.Lock()
				delete(pending, id)
				acked[id] = obj
				mu.Unlock()
				n.Add(1)
			}
		})
	}
	t0 := time.Now()
	waitFor(t, "300 events acknowledged with deliveries under way", 60*time.Second, func() bool { return n.Load() >= 300 && hook.count() > 50 })
	t.Logf("kill after %s: %d acked, %d delivered", time.Since(t0), n.Load(), hook.count())
	_ = s.Cmd.Process.Signal(syscall.SIGKILL)
	stop.Store(true)
	wg.Wait()
	<-s.Exited()
	seenAtKill := hook.count()

	s2 := startServer(t, dir, nil)
	// Events that were sent but not acknowledged are sent again, as a
	// producer does; the stream drops the ones that were stored.
	for id, obj := range pending {
		if !send(s2, id, obj) {
			t.Fatalf("re-send %s", id)
		}
		acked[id] = obj
	}
	want := map[string]bool{}
	for id, obj := range acked {
		want[actions.ActionKey("every", fmt.Sprintf(`["pool","%s"]`, obj), id, actions.ActionWebhook, 0, false)] = true
	}
	missing := func() int {
		hook.mu.Lock()
		defer hook.mu.Unlock()
		got := map[string]bool{}
		for _, id := range hook.ids {
			got[id] = true
		}
		m := 0
		for k := range want {
			if !got[k] {
				m++
			}
		}
		return m
	}
	deadline := time.Now().Add(60 * time.Second)
	t1 := time.Now()
	for missing() > 0 {
		if time.Since(t1) > 5*time.Second {
			t.Logf("%d missing, %d delivered", missing(), hook.count())
			t1 = time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d keys never delivered (%d deliveries)\n%s", missing(), len(want), hook.count(), s2.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	hook.mu.Lock()
	seen, repeats := map[string]bool{}, 0
	for _, id := range hook.ids {
		if !want[id] {
			t.Errorf("a delivery with a key no event caused: %q", id)
		}
		if seen[id] {
			repeats++
		}
		seen[id] = true
	}
	total := len(hook.ids)
	hook.mu.Unlock()
	t.Logf("%d events acknowledged (%d re-sent after the kill); %d deliveries before the kill, %d in all, %d repeats of a key already seen",
		len(acked), len(pending), seenAtKill, total, repeats)
	term(t, s2)
}

// TestTwoServesOneNATS: two vigil serve processes on one NATS server share
// the rules consumer: a burst of events over 20 objects, 3 each with a
// threshold of 3, gives 20 alerts and 20 webhooks, one per object, and each
// process decided a share.
func TestTwoServesOneNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("two servers")
	}
	ns, err := natsserver.NewServer(&natsserver.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(ns.Shutdown)
	url := ns.ClientURL()
	hook := newHookRecorder(t)
	dir1, dir2 := t.TempDir(), t.TempDir()
	s1 := startServer(t, dir1, nil, "--nats-url", url, "--nats-listen", "off", "--no-runner")
	// The second process shares the first's admin token and secret key.
	for _, f := range []string{"admin.token", "secret.key"} {
		b, err := os.ReadFile(filepath.Join(dir1, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir2, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s2 := startServer(t, dir2, nil, "--nats-url", url, "--nats-listen", "off", "--no-runner")
	yaml := fmt.Sprintf(`kind: ActionGroup
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
`, hook.URL)
	if _, errOut, code := s1.CLI(t, yaml, "apply", "-f", "-"); code != 0 {
		t.Fatal(errOut)
	}
	time.Sleep(300 * time.Millisecond) // both engines follow the config
	var batch []string
	for round := range 3 {
		for obj := range 20 {
			batch = append(batch, fmt.Sprintf(`{"id":"b-%d-%d","event_id":"SERVER_DOWN","obj_type":"pool","obj_name":"p%02d"}`, round, obj, obj))
		}
	}
	req, _ := http.NewRequest("POST", s1.API+"/api/v1/events", strings.NewReader("["+strings.Join(batch, ",")+"]"))
	req.Header.Set("Authorization", "Bearer "+s1.Token)
	req.Header.Set("Content-Type", "application/cloudevents-batch+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("batch publish: %d", resp.StatusCode)
	}
	waitFor(t, "20 webhooks", 20*time.Second, func() bool { return hook.count() >= 20 })
	time.Sleep(500 * time.Millisecond)
	hook.mu.Lock()
	objs := map[string]int{}
	for _, b := range hook.body {
		var n actions.Notice
		_ = json.Unmarshal(b, &n)
		objs[n.Alert.ObjName]++
	}
	hook.mu.Unlock()
	if len(objs) != 20 || hook.count() != 20 {
		t.Fatalf("%d webhooks over %d objects, want 20 over 20: %v", hook.count(), len(objs), objs)
	}
	var alerts struct {
		Items []struct {
			State  string `json:"state"`
			Events []any  `json:"events"`
		} `json:"items"`
	}
	getJSON(t, s2, "/api/v1/alerts", &alerts)
	if len(alerts.Items) != 20 {
		t.Fatalf("%d alerts, want 20", len(alerts.Items))
	}
	decided := func(s *server) int {
		req, _ := http.NewRequest("GET", s.API+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+s.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		n := 0
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "vigil_rules_decisions_total{") {
				var v int
				fmt.Sscan(line[strings.LastIndex(line, " ")+1:], &v)
				n += v
			}
		}
		return n
	}
	n1, n2 := decided(s1), decided(s2)
	if n1+n2 != 60 || n1 == 0 || n2 == 0 {
		t.Fatalf("decisions %d and %d, want 60 between two non-zero shares", n1, n2)
	}
	t.Logf("the two processes decided %d and %d of 60 matches", n1, n2)
	term(t, s1)
	term(t, s2)
}

// TestRetrySurvivesRestart: an action whose receiver fails is retried
// after vigil is killed and started again, with the same key, and its
// outcome reaches the alert.
func TestRetrySurvivesRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test")
	}
	var (
		mu     sync.Mutex
		status = http.StatusInternalServerError
		keys   []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		keys = append(keys, r.Header.Get("webhook-id"))
		code := status
		mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	tries := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(keys)
	}
	dir := t.TempDir()
	s := startServer(t, dir, nil)
	yaml := fmt.Sprintf(`kind: ActionGroup
name: hook
spec:
  webhooks: [{url: %s}]
  retry: {tries: 10, backoff: 2s, max_backoff: 2s}
---
kind: AlertConfig
name: down
spec:
  events: [SERVER_DOWN]
  action_group: hook
`, srv.URL)
	if _, errOut, code := s.CLI(t, yaml, "apply", "-f", "-"); code != 0 {
		t.Fatal(errOut)
	}
	time.Sleep(200 * time.Millisecond)
	if !postEvent(t, s, serverDown("web", 0)) {
		t.Fatal("publish failed")
	}
	waitFor(t, "the first try", 10*time.Second, func() bool { return tries() >= 1 })
	_ = s.Cmd.Process.Signal(syscall.SIGKILL)
	<-s.Exited()
	mu.Lock()
	status = http.StatusOK
	mu.Unlock()

	s2 := startServer(t, dir, nil)
	type alert struct {
		ID      string `json:"id"`
		Actions []struct {
			Key, Status string
			Tries       int
		} `json:"actions"`
	}
	var alerts struct {
		Items []alert `json:"items"`
	}
	getJSON(t, s2, "/api/v1/alerts", &alerts)
	if len(alerts.Items) != 1 {
		t.Fatalf("%d alerts after the restart", len(alerts.Items))
	}
	var a alert
	waitFor(t, "the retry after the restart", 40*time.Second, func() bool {
		getJSON(t, s2, "/api/v1/alerts/"+alerts.Items[0].ID, &a)
		return len(a.Actions) == 1 && a.Actions[0].Status == "delivered"
	})
	mu.Lock()
	defer mu.Unlock()
	for _, k := range keys {
		if k != keys[0] {
			t.Fatalf("keys %v: a retry changed the key", keys)
		}
	}
	if a.Actions[0].Key != keys[0] || len(keys) < 2 {
		t.Fatalf("outcome %+v, receiver saw %v", a.Actions[0], keys)
	}
	t.Logf("%d tries, the last after the restart, all with key %s", len(keys), keys[0])
	term(t, s2)
}

// TestMissingControlScriptDeadLetters: an ActionGroup naming a
// ControlScript that does not exist dead-letters the action at the first
// try, naming the script.
func TestMissingControlScriptDeadLetters(t *testing.T) {
	s := startServer(t, t.TempDir(), nil)
	yaml := `kind: ActionGroup
name: ghost
spec:
  controlscript: no-such-script
---
kind: AlertConfig
name: down
spec:
  events: [SERVER_DOWN]
  action_group: ghost
`
	if _, errOut, code := s.CLI(t, yaml, "apply", "-f", "-"); code != 0 {
		t.Fatal(errOut)
	}
	time.Sleep(200 * time.Millisecond)
	postEvent(t, s, serverDown("web", 0))
	var dls struct {
		Items []struct {
			Error string `json:"error"`
			Tries int    `json:"tries"`
		} `json:"items"`
	}
	waitFor(t, "the dead letter", 20*time.Second, func() bool {
		getJSON(t, s, "/api/v1/deadletters", &dls)
		return len(dls.Items) == 1
	})
	if dls.Items[0].Tries != 1 || !strings.Contains(dls.Items[0].Error, "no-such-script") {
		t.Fatalf("dead letter: %+v", dls.Items[0])
	}
	term(t, s)
}
