package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigilhq/vigil/events"
	"github.com/vigilhq/vigil/vigiltest"
)

// instance is a vigil started in-process by Run.
type instance struct {
	dir    string
	api    string
	nats   string
	token  string
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func startInstance(t testing.TB, dir string, mutate func(*Options)) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	opts := Options{
		DataDir: dir, Listen: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
		Logger: slog.New(slog.DiscardHandler), Version: "test",
	}
	if mutate != nil {
		mutate(&opts)
	}
	_ = os.Remove(filepath.Join(dir, AddrFile))
	in := &instance{dir: dir, cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- Run(ctx, opts) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		data, err := os.ReadFile(filepath.Join(dir, AddrFile))
		if err == nil {
			for _, line := range strings.Split(string(data), "\n") {
				if v, ok := strings.CutPrefix(line, "api="); ok {
					in.api = v
				}
				if v, ok := strings.CutPrefix(line, "nats="); ok {
					in.nats = v
				}
			}
			break
		}
		select {
		case err := <-in.done:
			t.Fatalf("vigil stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("vigil did not write its addr file")
		}
		time.Sleep(10 * time.Millisecond)
	}
	tok, err := os.ReadFile(filepath.Join(dir, AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	in.token = strings.TrimSpace(string(tok))
	t.Cleanup(in.stop)
	return in
}

func (in *instance) stop() {
	in.once.Do(func() {
		in.cancel()
		select {
		case <-in.done:
		case <-time.After(20 * time.Second):
		}
	})
}

func (in *instance) do(t testing.TB, method, path string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, in.api+path, r)
	req.Header.Set("Authorization", "Bearer "+in.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func TestServeFilesAndModes(t *testing.T) {
	dir := t.TempDir()
	in := startInstance(t, dir, nil)
	for _, f := range []string{AdminTokenFile, NATSURLFile, SecretKeyFile} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	if !strings.HasPrefix(in.token, "vgl_") {
		t.Fatalf("token %q", in.token)
	}
	// A second process on the same data dir is refused.
	err := Run(context.Background(), Options{DataDir: dir, Listen: "127.0.0.1:0", NATSListen: "off", Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Run: %v", err)
	}
}

// TestNATSClientCredentials: an event published through the API reaches a
// NATS client connected over TCP with the generated credentials, and those
// credentials can neither read the config bucket nor touch JetStream.
func TestNATSClientCredentials(t *testing.T) {
	dir := t.TempDir()
	in := startInstance(t, dir, nil)
	urlBytes, err := os.ReadFile(filepath.Join(dir, NATSURLFile))
	if err != nil {
		t.Fatal(err)
	}
	asyncErrs := make(chan error, 8)
	nc, err := nats.Connect(strings.TrimSpace(string(urlBytes)), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { asyncErrs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if !strings.HasPrefix(nc.ConnectedUrl(), "nats://") || strings.Contains(in.nats, "@") {
		t.Fatalf("addr file leaks credentials or url odd: %s", in.nats)
	}
	sub, err := nc.SubscribeSync("vigil.events.CUSTOM_EVENT.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	code, body := in.do(t, "POST", "/api/v1/events", map[string]any{"event_id": "CUSTOM_EVENT", "obj_type": "pool", "obj_name": "web", "event_details": map[string]string{"k": "v"}})
	if code != http.StatusCreated {
		t.Fatalf("publish: %d %s", code, body)
	}
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Subject != "vigil.events.CUSTOM_EVENT.pool.web" || !bytes.Contains(msg.Data, []byte(`"k":"v"`)) {
		t.Fatalf("got %s %s", msg.Subject, msg.Data)
	}
	// A repeated id is stored once, so subscribers see it once.
	for _, id := range []string{"dup-1", "dup-1", "after-dup"} {
		code, body := in.do(t, "POST", "/api/v1/events", map[string]any{"event_id": "CUSTOM_EVENT", "obj_type": "pool", "obj_name": "web", "id": id})
		if code != http.StatusCreated {
			t.Fatalf("publish %s: %d %s", id, code, body)
		}
	}
	for _, want := range []string{"dup-1", "after-dup"} {
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(msg.Data, []byte(`"id":"`+want+`"`)) {
			t.Fatalf("want %s, got %s", want, msg.Data)
		}
	}

	// No KV, no JetStream API.
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := js.KeyValue(ctx, "vigil_config"); err == nil {
		t.Fatal("client credentials opened the config bucket")
	}
	if _, err := nc.SubscribeSync("$KV.vigil_config.>"); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.SubscribeSync(events.InternalInboxPrefix + ".>"); err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	denied := 0
	timeout := time.After(3 * time.Second)
	for denied < 2 {
		select {
		case err := <-asyncErrs:
			if errors.Is(err, nats.ErrPermissionViolation) || strings.Contains(strings.ToLower(err.Error()), "permission") {
				denied++
			}
		case <-timeout:
			t.Fatalf("subscriptions to KV and vigil's inbox were not refused (%d refused)", denied)
		}
	}
	// Publishing into the events stream directly is refused too.
	if err := nc.Publish("vigil.events.FAKE.x.y", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	select {
	case err := <-asyncErrs:
		if !strings.Contains(strings.ToLower(err.Error()), "permission") {
			t.Fatalf("unexpected: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("publish to vigil.events was not refused")
	}
}

// TestIngest: valid messages on vigil.ingest.> become events, malformed ones
// land in the rejected stream with the reason.
func TestIngest(t *testing.T) {
	dir := t.TempDir()
	in := startInstance(t, dir, nil)
	urlBytes, _ := os.ReadFile(filepath.Join(dir, NATSURLFile))
	nc, err := nats.Connect(strings.TrimSpace(string(urlBytes)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The validator handles messages in order and stores a rejection before
	// it moves on, so once the last (valid) one is listed, all are decided.
	for _, bad := range []string{`{not json`, `{"event_id":"lower_case"}`, `{"obj_type":"pool"}`} {
		if _, err := js.Publish(ctx, "vigil.ingest.dc1", []byte(bad)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.Publish(ctx, "vigil.ingest.dc1", []byte(`{"event_id":"SERVER_DOWN","obj_type":"pool","obj_name":"web","id":"ingest-ok-1"}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		code, body := in.do(t, "GET", "/api/v1/events?event_id=SERVER_DOWN", nil)
		return code == 200 && bytes.Contains(body, []byte("ingest-ok-1"))
	})
	code, body := in.do(t, "GET", "/api/v1/events/rejected?limit=2", nil)
	var page struct {
		Rejected []struct {
			Subject, Reason, Field, Data string
		}
		NextCursor string `json:"next_cursor"`
	}
	if err := json.Unmarshal(body, &page); err != nil || code != 200 {
		t.Fatalf("rejected list: %d %s", code, body)
	}
	if len(page.Rejected) != 2 || page.NextCursor == "" || page.Rejected[0].Data != `{not json` ||
		page.Rejected[1].Field != "event_id" || page.Rejected[0].Subject != "vigil.ingest.dc1" || page.Rejected[0].Reason == "" {
		t.Fatalf("rejected page: %s", body)
	}
	_, body = in.do(t, "GET", "/api/v1/events/rejected?cursor="+page.NextCursor, nil)
	if err := json.Unmarshal(body, &page); err != nil || len(page.Rejected) != 1 || page.NextCursor != "" {
		t.Fatalf("second page: %s", body)
	}
	in.stop()
	// Read the rejected stream with vigil's own rights, offline.
	bus, err := events.StartBus(ctx, events.BusOptions{StoreDir: filepath.Join(dir, JetStreamDir)})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Stop()
	s, err := bus.JetStream().Stream(ctx, events.RejectedStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 3 {
		t.Fatalf("rejected stream holds %d messages, want 3", n)
	}
	m, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get(events.HeaderRejectReason) == "" || string(m.Data) != `{not json` || m.Subject != "vigil.rejected.dc1" {
		t.Fatalf("rejected message: %s %v %s", m.Subject, m.Header, m.Data)
	}
	m, _ = s.GetMsg(ctx, 2)
	if m.Header.Get(events.HeaderRejectField) != "event_id" {
		t.Fatalf("field header: %v", m.Header)
	}
	ingest, err := bus.JetStream().Stream(ctx, events.IngestStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := ingest.CachedInfo().State.Msgs; n != 0 {
		t.Fatalf("ingest stream still holds %d messages", n)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEventsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	in := startInstance(t, dir, nil)
	code, body := in.do(t, "POST", "/api/v1/events", map[string]any{"event_id": "CUSTOM_EVENT", "obj_type": "pool", "obj_name": "web", "id": "survivor-1"})
	if code != http.StatusCreated {
		t.Fatalf("%d %s", code, body)
	}
	in.stop()
	in2 := startInstance(t, dir, nil)
	if in2.token != in.token {
		t.Fatal("admin token changed across restart")
	}
	code, body = in2.do(t, "GET", "/api/v1/events?event_id=CUSTOM_EVENT", nil)
	if code != 200 || !bytes.Contains(body, []byte("survivor-1")) {
		t.Fatalf("after restart: %d %s", code, body)
	}
	// The config bucket emitted CONFIG_CREATE for the admin token.
	code, body = in2.do(t, "GET", "/api/v1/events?event_id=CONFIG_CREATE&obj_type=token", nil)
	if code != 200 || !bytes.Contains(body, []byte(`"resource_name":"admin"`)) || bytes.Contains(body, []byte(`hash`)) {
		t.Fatalf("config event: %d %s", code, body)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key, returning the paths.
func selfSigned(t *testing.T, dir string) (certPath, keyPath string) {
	t.Helper()
	certPEM, keyPEM, _ := vigiltest.SelfSigned(t)
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

func TestTLS(t *testing.T) {
	certs := t.TempDir()
	certPath, keyPath := selfSigned(t, certs)
	in := startInstance(t, t.TempDir(), func(o *Options) { o.TLSCert, o.TLSKey = certPath, keyPath })
	if !strings.HasPrefix(in.api, "https://") {
		t.Fatalf("api %s", in.api)
	}
	if _, err := http.Get(in.api + "/healthz"); err == nil {
		t.Fatal("an unknown CA was trusted")
	}
	pool := x509.NewCertPool()
	pemBytes, _ := os.ReadFile(certPath)
	pool.AppendCertsFromPEM(pemBytes)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	resp, err := c.Get(in.api + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("healthz over TLS: %d %s", resp.StatusCode, resp.Proto)
	}
	// One of the pair alone is refused.
	err = Run(context.Background(), Options{DataDir: t.TempDir(), TLSCert: certPath, Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "--tls-key") {
		t.Fatalf("cert without key: %v", err)
	}
}

// TestExternalNATS runs vigil against a NATS server it does not own.
func TestExternalNATS(t *testing.T) {
	ns, err := server.NewServer(&server.Options{
		JetStream: true, StoreDir: t.TempDir(), Port: -1, Host: "127.0.0.1", NoSigs: true, NoLog: true,
		Users: []*server.User{{Username: "vigil-svc", Password: "s3cret"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(ns.Shutdown) // after vigil's own cleanup
	in := startInstance(t, t.TempDir(), func(o *Options) {
		o.NATSURL, o.NATSListen, o.NATSUser, o.NATSPassword = ns.ClientURL(), "off", "vigil-svc", "s3cret"
	})
	if in.nats != "" {
		t.Fatalf("vigil exposed a NATS port with an external server: %s", in.nats)
	}
	if _, err := os.Stat(filepath.Join(in.dir, NATSURLFile)); err == nil {
		t.Fatal("credentials written for a server vigil does not own")
	}
	code, body := in.do(t, "POST", "/api/v1/events", map[string]any{"event_id": "EXT_EVENT", "obj_type": "pool", "obj_name": "web", "id": "ext-1"})
	if code != http.StatusCreated {
		t.Fatalf("%d %s", code, body)
	}
	nc, err := nats.Connect(ns.ClientURL(), nats.UserInfo("vigil-svc", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, events.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(ctx, "vigil.journal.EXT_EVENT.pool.web")
	if err != nil || !bytes.Contains(m.Data, []byte("ext-1")) {
		t.Fatalf("event not in the external server: %v", err)
	}
	// With the server gone, vigil still stops promptly.
	ns.Shutdown()
	start := time.Now()
	in.stop()
	if d := time.Since(start); d > 12*time.Second {
		t.Fatalf("stop without NATS took %s", d)
	}
	// Wrong credentials give a clear error that does not echo the password.
	ns2, err := server.NewServer(&server.Options{
		Port: -1, Host: "127.0.0.1", NoSigs: true, NoLog: true,
		Users: []*server.User{{Username: "vigil-svc", Password: "s3cret"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns2.Start()
	if !ns2.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(ns2.Shutdown)
	err = Run(context.Background(), Options{DataDir: t.TempDir(), NATSURL: "nats://vigil-svc:wrong@" + strings.TrimPrefix(ns2.ClientURL(), "nats://"), NATSListen: "off", Logger: slog.New(slog.DiscardHandler)})
	if err == nil || strings.Contains(err.Error(), "wrong") || !strings.Contains(err.Error(), "connect") {
		t.Fatalf("bad credentials: %v", err)
	}
}

func TestMetrics(t *testing.T) {
	in := startInstance(t, t.TempDir(), nil)
	if code, body := in.do(t, "POST", "/api/v1/events", map[string]any{"event_id": "METRIC_EVENT", "obj_type": "pool", "obj_name": "web"}); code != 201 {
		t.Fatalf("%d %s", code, body)
	}
	if code, _ := in.do(t, "GET", "/api/v1/objects/Secret/nope", nil); code != 404 {
		t.Fatalf("want 404, got %d", code)
	}
	waitFor(t, func() bool {
		code, body := in.do(t, "GET", "/metrics", nil)
		s := string(body)
		return code == 200 &&
			strings.Contains(s, `vigil_events_total{event_id="METRIC_EVENT"} 1`) &&
			strings.Contains(s, "vigil_jetstream_up 1") &&
			strings.Contains(s, `vigil_stream_messages{stream="VIGIL_EVENTS"}`) &&
			strings.Contains(s, `code="404"`) && strings.Contains(s, `route="GET /api/v1/objects/{kind}/{name}"`)
	})
	resp, err := http.Get(in.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("metrics without a token: %d", resp.StatusCode)
	}
}

// TestStopWithOpenStream: an open event stream does not hold a shutdown.
func TestStopWithOpenStream(t *testing.T) {
	in := startInstance(t, t.TempDir(), nil)
	req, _ := http.NewRequest("GET", in.api+"/api/v1/events/stream", nil)
	req.Header.Set("Authorization", "Bearer "+in.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	start := time.Now()
	in.cancel()
	select {
	case err := <-in.done:
		in.once.Do(func() {}) // stopped: nothing left for the cleanup
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("shutdown waited for the open stream")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shutdown took %s", d)
	}
	if _, err := io.ReadAll(resp.Body); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Logf("stream ended with %v", err)
	}
}

func TestPublishBatch(t *testing.T) {
	in := startInstance(t, t.TempDir(), nil)
	post := func(body string) (int, []byte) {
		req, _ := http.NewRequest("POST", in.api+"/api/v1/events", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+in.token)
		req.Header.Set("Content-Type", "application/cloudevents-batch+json; charset=utf-8")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, body := post(`[{"event_id":"BATCH_EVENT","obj_type":"pool","obj_name":"a","id":"b-1"},
		{"specversion":"1.0","type":"BATCH_EVENT","source":"/x","id":"b-2","data":{"event_id":"BATCH_EVENT","obj_type":"pool","obj_name":"b"}},
		{"event_id":"BATCH_EVENT","obj_type":"pool","obj_name":"a","id":"b-1"}]`)
	if code != http.StatusCreated {
		t.Fatalf("%d %s", code, body)
	}
	var res struct {
		Results []struct {
			ID        string `json:"id"`
			Seq       uint64 `json:"seq"`
			Duplicate bool   `json:"duplicate"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &res); err != nil || len(res.Results) != 3 {
		t.Fatalf("%v %s", err, body)
	}
	if res.Results[0].ID != "b-1" || res.Results[1].ID != "b-2" || res.Results[0].Duplicate || !res.Results[2].Duplicate || res.Results[2].Seq != res.Results[0].Seq {
		t.Fatalf("results: %s", body)
	}
	// One invalid event refuses the whole batch and names it.
	code, body = post(`[{"event_id":"BATCH_EVENT","obj_type":"pool","obj_name":"c","id":"b-3"},{"event_id":"bad"}]`)
	if code != http.StatusBadRequest || !strings.Contains(string(body), `"field":"[1].event_id"`) {
		t.Fatalf("invalid batch: %d %s", code, body)
	}
	code, body = post(`[]`)
	if code != http.StatusBadRequest {
		t.Fatalf("empty batch: %d %s", code, body)
	}
	_, body = in.do(t, "GET", "/api/v1/events?event_id=BATCH_EVENT", nil)
	if n := strings.Count(string(body), `"id":"b-`); n != 2 || strings.Contains(string(body), "b-3") {
		t.Fatalf("stored %d, want b-1 and b-2 only: %s", n, body)
	}
}

// TestHooksListen: --hooks-listen serves the webhook receivers, and only
// them, on an address of its own, written to the addr file.
func TestHooksListen(t *testing.T) {
	dir := t.TempDir()
	in := startInstance(t, dir, func(o *Options) { o.HooksListen = "127.0.0.1:0" })
	data, err := os.ReadFile(filepath.Join(dir, AddrFile))
	if err != nil {
		t.Fatal(err)
	}
	var hooks string
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "hooks="); ok {
			hooks = v
		}
	}
	if hooks == "" || hooks == in.api {
		t.Fatalf("addr file: %s", data)
	}
	body := `{"objects": [{"kind": "WebhookReceiver", "name": "open", "spec": {"format": "json", "event_id": "HOOKED", "auth": {"type": "none"}}}]}`
	req, _ := http.NewRequest("POST", in.api+"/api/v1/apply", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+in.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("apply: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Post(hooks+"/hooks/open", "application/json", strings.NewReader(`{"a": 1}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusAccepted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("POST on the hooks listener: %d", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Only the hooks: the API is not on that address.
	req, _ = http.NewRequest("GET", hooks+"/api/v1/kinds", nil)
	req.Header.Set("Authorization", "Bearer "+in.token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("the API answered on the hooks listener: %d", resp.StatusCode)
	}
}

// TestProcsFollowVirtualServices: with Options.Procs, GOMAXPROCS is twice
// what it was while a virtual service serves, and back once none does.
func TestProcsFollowVirtualServices(t *testing.T) {
	var mu sync.Mutex
	procs := 3
	get := func() int {
		mu.Lock()
		defer mu.Unlock()
		return procs
	}
	in := startInstance(t, t.TempDir(), func(o *Options) {
		o.Procs = func(n int) int {
			mu.Lock()
			defer mu.Unlock()
			old := procs
			if n > 0 {
				procs = n
			}
			return old
		}
	})
	wait := func(want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for get() != want {
			if time.Now().After(deadline) {
				t.Fatalf("GOMAXPROCS %d, want %d", get(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if get() != 3 {
		t.Fatalf("GOMAXPROCS %d before any virtual service, want 3", get())
	}
	for path, spec := range map[string]any{
		"/api/v1/objects/Pool/web":           map[string]any{"servers": []any{map[string]any{"ip": "127.0.0.1", "port": 9}}},
		"/api/v1/objects/VirtualService/web": map[string]any{"listen": "127.0.0.1:0", "pool": "web"},
	} {
		if code, body := in.do(t, "PUT", path, map[string]any{"spec": spec}); code/100 != 2 {
			t.Fatalf("PUT %s: %d %s", path, code, body)
		}
	}
	wait(6)
	if code, body := in.do(t, "DELETE", "/api/v1/objects/VirtualService/web", nil); code/100 != 2 {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	wait(3)
}
