package main

import (
	"bytes"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/vigilhq/vigil/vigiltest"
)

// These tests run the real binary as a child process.

var vigilBin string

func TestMain(m *testing.M) { vigiltest.Main(m, &vigilBin) }

type server = vigiltest.Server

func startServer(t *testing.T, dir string, env []string, args ...string) *server {
	t.Helper()
	return vigiltest.Start(t, vigilBin, dir, env, args...)
}

func term(t *testing.T, s *server) {
	t.Helper()
	if err := s.Term(20 * time.Second); err != nil {
		t.Fatalf("vigil serve after SIGTERM: %v", err)
	}
}

func TestCLIEventsPublishListNATSRestart(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, nil)
	urlBytes, err := os.ReadFile(filepath.Join(dir, "nats.url"))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(strings.TrimSpace(string(urlBytes)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("vigil.events.CUSTOM_EVENT.>")
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()

	out, errOut, code := s.CLI(t, "", "events", "publish", "CUSTOM_EVENT", "--obj-type", "pool", "--obj-name", "web", "--details", `{"k":"v"}`)
	if code != 0 {
		t.Fatalf("publish: %d %s %s", code, out, errOut)
	}
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		ID   string `json:"id"`
		Data struct {
			EventDetails map[string]string `json:"event_details"`
		} `json:"data"`
	}
	if err := json.Unmarshal(msg.Data, &got); err != nil || got.Data.EventDetails["k"] != "v" {
		t.Fatalf("nats message: %v %s", err, msg.Data)
	}
	listed := func(s *server) {
		t.Helper()
		out, errOut, code := s.CLI(t, "", "events", "list", "-o", "json")
		if code != 0 {
			t.Fatalf("list: %d %s", code, errOut)
		}
		var evs []map[string]any
		if err := json.Unmarshal([]byte(out), &evs); err != nil {
			t.Fatalf("list output: %v\n%s", err, out)
		}
		for _, e := range evs {
			if e["id"] == got.ID && e["type"] == "CUSTOM_EVENT" {
				return
			}
		}
		t.Fatalf("event %s not listed:\n%s", got.ID, out)
	}
	listed(s)

	// A malformed message on vigil.ingest.> is listed with its reason.
	if err := nc.Publish("vigil.ingest.probe", []byte(`{"event_id": 42}`)); err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, errOut, code := s.CLI(t, "", "events", "rejected", "-o", "json")
		if code != 0 {
			t.Fatalf("events rejected: %s", errOut)
		}
		if strings.Contains(out, `"subject": "vigil.ingest.probe"`) && strings.Contains(out, `"field": "event_id"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("malformed ingest not listed:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	term(t, s)
	s2 := startServer(t, dir, nil)
	listed(s2)

	// Errors are one line on stderr with a non-zero exit.
	_, errOut, code = s2.CLI(t, "", "events", "publish", "lower", "--obj-type", "pool", "--obj-name", "web")
	if code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "event_id") {
		t.Fatalf("bad event id: %d %q", code, errOut)
	}
}

// TestKillDuringBurst kills `vigil serve` with SIGKILL while 32 clients post
// events, then checks that every acknowledged event survived and that
// re-sending the unacknowledged ones stores each id exactly once.
func TestKillDuringBurst(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test")
	}
	dir := t.TempDir()
	for run := range 3 {
		t.Run(fmt.Sprintf("run%d", run), func(t *testing.T) { killDuringBurst(t, dir, run) })
	}
}

func killDuringBurst(t *testing.T, dir string, run int) {
	s := startServer(t, dir, nil)
	const clients = 32
	eventID := fmt.Sprintf("BURST_%d", run)
	var (
		acked   atomic.Int64
		mu      sync.Mutex
		sent    = map[string]bool{} // id → acknowledged
		killed  = make(chan struct{})
		atKill  int64
		wg      sync.WaitGroup
		httpc   = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
		stopAll atomic.Bool
	)
	post := func(c *http.Client, api, token, id string) bool {
		body := fmt.Sprintf(`{"event_id":%q,"obj_type":"pool","obj_name":"web","id":%q}`, eventID, id)
		req, _ := http.NewRequest("POST", api+"/api/v1/events", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode == http.StatusCreated
	}
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stopAll.Load(); i++ {
				id := fmt.Sprintf("r%d-c%d-%d", run, c, i)
				mu.Lock()
				sent[id] = false
				mu.Unlock()
				if !post(httpc, s.API, s.Token, id) {
					return
				}
				mu.Lock()
				sent[id] = true
				mu.Unlock()
				if acked.Add(1) == 1000 {
					close(killed)
				}
			}
		}()
	}
	select {
	case <-killed:
	case <-time.After(60 * time.Second):
		t.Fatal("burst did not reach 1000 acks")
	}
	atKill = acked.Load()
	_ = s.Cmd.Process.Signal(syscall.SIGKILL)
	stopAll.Store(true)
	wg.Wait()
	<-s.Exited()
	total := acked.Load()
	if atKill < 1000 || total >= 5000 {
		t.Fatalf("kill landed after %d acks (%d in all); want [1000, 5000)", atKill, total)
	}
	var ackedIDs, unacked []string
	for id, ok := range sent {
		if ok {
			ackedIDs = append(ackedIDs, id)
		} else {
			unacked = append(unacked, id)
		}
	}
	t.Logf("run %d: killed after %d acks, %d acknowledged in all, %d unacknowledged", run, atKill, total, len(unacked))

	s2 := startServer(t, dir, nil)
	stored := listAll(t, s2, eventID)
	for _, id := range ackedIDs {
		if stored[id] != 1 {
			t.Fatalf("acknowledged event %s stored %d times after restart", id, stored[id])
		}
	}
	for _, id := range unacked {
		if !post(http.DefaultClient, s2.API, s2.Token, id) {
			t.Fatalf("re-send %s failed", id)
		}
	}
	stored = listAll(t, s2, eventID)
	for id := range sent {
		if stored[id] != 1 {
			t.Fatalf("event %s stored %d times after re-send", id, stored[id])
		}
	}
	if len(stored) != len(sent) {
		t.Fatalf("%d distinct ids stored, %d sent", len(stored), len(sent))
	}
	term(t, s2)
}

// listAll pages through GET /api/v1/events and counts ids.
func listAll(t *testing.T, s *server, eventID string) map[string]int {
	t.Helper()
	return countEvents(t, s, eventID, "id")
}

// countEvents pages through GET /api/v1/events of eventID and counts the
// events by the value of a top-level attribute (id, or an extension).
func countEvents(t *testing.T, s *server, eventID, attr string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	cursor := ""
	for {
		req, _ := http.NewRequest("GET", s.API+"/api/v1/events?limit=1000&event_id="+eventID+"&cursor="+cursor, nil)
		req.Header.Set("Authorization", "Bearer "+s.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Events     []map[string]any `json:"events"`
			NextCursor string           `json:"next_cursor"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("list: %d %v", resp.StatusCode, err)
		}
		for _, e := range page.Events {
			v, _ := e[attr].(string)
			counts[v]++
		}
		if page.NextCursor == "" {
			return counts
		}
		cursor = page.NextCursor
	}
}

func secretsYAML(n int, prefix string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "---\nkind: Secret\nname: %s-%03d\nspec:\n  data:\n    password: p%d\n", prefix, i, i)
	}
	return b.String()
}

func TestApplyAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, nil)
	good := secretsYAML(3, "good")
	bad := good + "---\nkind: Secret\nname: broken\nspec:\n  data: [1, 2]\n"
	_, errOut, code := s.CLI(t, bad, "apply", "-f", "-")
	if code == 0 || !strings.Contains(errOut, "Secret/broken") || !strings.Contains(errOut, "spec.data") {
		t.Fatalf("invalid apply: %d %q", code, errOut)
	}
	out, _, _ := s.CLI(t, "", "get", "secret", "-o", "json")
	if strings.Contains(out, "good-000") {
		t.Fatalf("part of an invalid file was applied:\n%s", out)
	}

	if out, errOut, code := s.CLI(t, good, "apply", "-f", "-"); code != 0 {
		t.Fatalf("apply: %d %s %s", code, out, errOut)
	}
	var one struct {
		Metadata struct {
			Revision uint64 `json:"revision"`
		} `json:"metadata"`
	}
	out, _, _ = s.CLI(t, "", "get", "secret", "good-000", "-o", "json")
	if err := json.Unmarshal([]byte(out), &one); err != nil || one.Metadata.Revision == 0 {
		t.Fatalf("get good-000: %v %s", err, out)
	}
	revBefore := one.Metadata.Revision
	// A later object with a stale revision: nothing of the file is written.
	stale := "kind: Secret\nname: good-000\nspec:\n  data:\n    password: changed\n---\nkind: Secret\nname: fresh\nspec:\n  data:\n    k: v\n---\nkind: Secret\nname: good-001\nmetadata:\n  revision: 1\nspec:\n  data:\n    password: changed\n"
	_, errOut, code = s.CLI(t, stale, "apply", "-f", "-")
	if code == 0 || !strings.Contains(errOut, "Secret/good-001") {
		t.Fatalf("stale apply: %d %q", code, errOut)
	}
	out, _, _ = s.CLI(t, "", "get", "secret", "-o", "json")
	if strings.Contains(out, `"fresh"`) {
		t.Fatalf("stale batch partly applied:\n%s", out)
	}
	var list struct {
		Items []struct {
			Name     string `json:"name"`
			Metadata struct {
				Revision uint64 `json:"revision"`
			} `json:"metadata"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, it := range list.Items {
		if it.Name == "good-000" && it.Metadata.Revision != revBefore {
			t.Fatalf("good-000 changed from revision %d to %d by a batch that failed", revBefore, it.Metadata.Revision)
		}
	}
	// A stale revision over the API is a 409.
	req, _ := http.NewRequest("PUT", s.API+"/api/v1/objects/Secret/good-002", strings.NewReader(`{"spec":{"data":{"password":"x"}},"metadata":{"revision":1}}`))
	req.Header.Set("Authorization", "Bearer "+s.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("stale PUT: %d", resp.StatusCode)
	}
}

// TestApplyKilledMidBatch kills the server between staging and committing a
// batch: after a restart none of the batch is there.
func TestApplyKilledMidBatch(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, []string{"VIGIL_FAULT_COMMIT_DELAY=60s"})
	apply := exec.Command(vigilBin, "apply", "-f", "-")
	apply.Env = append(os.Environ(), "VIGIL_ADDR="+s.API, "VIGIL_TOKEN="+s.Token)
	apply.Stdin = strings.NewReader(secretsYAML(200, "mid"))
	var errb bytes.Buffer
	apply.Stderr = &errb
	if err := apply.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill the server once the batch is staged and waits for its commit.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(s.Logs(), "pausing before commit") {
		if time.Now().After(deadline) {
			t.Fatalf("batch never staged\n%s", s.Logs())
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Kill()
	err := apply.Wait()
	if err == nil {
		t.Fatal("apply succeeded although the server was killed before the commit")
	}
	s2 := startServer(t, dir, nil)
	out, errOut, code := s2.CLI(t, "", "get", "secret", "-o", "json")
	if code != 0 {
		t.Fatalf("get: %s", errOut)
	}
	if strings.Contains(out, "mid-") {
		t.Fatalf("a batch killed before its commit left objects:\n%s", out)
	}
	// The same file applies whole afterwards.
	if _, errOut, code := s2.CLI(t, secretsYAML(200, "mid"), "apply", "-f", "-"); code != 0 {
		t.Fatalf("re-apply: %s", errOut)
	}
	out, _, _ = s2.CLI(t, "", "get", "secret", "-o", "json")
	if n := strings.Count(out, `"mid-`); n != 200 {
		t.Fatalf("%d of 200 objects after re-apply", n)
	}
}

func TestConfigFilesReloadAndPrune(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "conf")
	if err := os.MkdirAll(cfg, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(cfg, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.yaml", "kind: Secret\nname: from-file-a\nspec:\n  data:\n    k: one\n")
	write("b.yaml", "kind: Secret\nname: from-file-b\nspec:\n  data:\n    k: two\n")
	s := startServer(t, dir, nil, "--config", cfg, "--config-prune")
	names := func() string {
		out, errOut, code := s.CLI(t, "", "get", "secret")
		if code != 0 {
			t.Fatalf("get: %s", errOut)
		}
		return out
	}
	if out := names(); !strings.Contains(out, "from-file-a") || !strings.Contains(out, "from-file-b") {
		t.Fatalf("config not applied at start:\n%s", out)
	}
	// An object written by a user is never pruned.
	if _, errOut, code := s.CLI(t, "kind: Secret\nname: by-hand\nspec:\n  data:\n    k: v\n", "apply", "-f", "-"); code != 0 {
		t.Fatal(errOut)
	}
	if err := os.Remove(filepath.Join(cfg, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	write("c.yaml", "kind: Secret\nname: from-file-c\nspec:\n  data:\n    k: three\n")
	if err := s.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := names()
		if strings.Contains(out, "from-file-c") && !strings.Contains(out, "from-file-b") {
			if !strings.Contains(out, "by-hand") || !strings.Contains(out, "from-file-a") {
				t.Fatalf("reload pruned too much:\n%s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP did not reload:\n%s\n%s", out, s.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A broken file on reload is logged and changes nothing.
	write("d.yaml", "kind: Secret\nname: broken\nspec: [\n")
	_ = s.Cmd.Process.Signal(syscall.SIGHUP)
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(s.Logs(), "reload config") {
		if time.Now().After(deadline) {
			t.Fatalf("broken reload not reported:\n%s", s.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out := names(); !strings.Contains(out, "from-file-c") {
		t.Fatalf("broken reload changed objects:\n%s", out)
	}
	// A broken file at start stops vigil with a clear error.
	term(t, s)
	cmd := exec.Command(vigilBin, "serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--nats-listen", "off", "--config", cfg)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "d.yaml") {
		t.Fatalf("start with broken config: %v\n%s", err, out)
	}
}

func TestResetAdminToken(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, nil)
	old := s.Token
	out, errOut, code := s.CLI(t, "", "token", "reset-admin", "--data-dir", dir)
	if code == 0 || !strings.Contains(errOut, "in use") {
		t.Fatalf("reset-admin while running: %d %s %s", code, out, errOut)
	}
	term(t, s)
	if err := os.Remove(filepath.Join(dir, "admin.token")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(vigilBin, "token", "reset-admin", "--data-dir", dir)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("reset-admin: %v\n%s", err, b)
	}
	s2 := startServer(t, dir, nil)
	if s2.Token == old || s2.Token == "" {
		t.Fatal("token not replaced")
	}
	if _, _, code := s2.CLI(t, "", "token", "list"); code != 0 {
		t.Fatal("new admin token refused")
	}
	cmd = exec.Command(vigilBin, "token", "list")
	cmd.Env = append(os.Environ(), "VIGIL_ADDR="+s2.API, "VIGIL_TOKEN="+old)
	b, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "unauthorized") {
		t.Fatalf("old admin token still works: %v %s", err, b)
	}
}

func scriptYAML(name, body string, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "kind: ControlScript\nname: %s\nspec:\n%s  source: |\n", name, extra)
	for _, line := range strings.Split(strings.TrimRight(body, "\n"), "\n") {
		b.WriteString("    " + line + "\n")
	}
	return b.String()
}

func TestRunHelloAndShow(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the sandbox needs root")
	}
	s := startServer(t, t.TempDir(), nil)
	yaml := scriptYAML("hello", "import sys, json\nalert = json.loads(sys.argv[1])\nprint('hello', alert.get('name'))\nprint('to stderr', file=sys.stderr)", "")
	if _, errOut, code := s.CLI(t, yaml, "apply", "-f", "-"); code != 0 {
		t.Fatal(errOut)
	}
	out, errOut, code := s.CLI(t, `{"name": "a1"}`, "run", "hello", "--alert", "-", "--wait")
	if code != 0 || out != "hello a1\n" || !strings.Contains(errOut, "to stderr") {
		t.Fatalf("run: %d %q %q\n%s", code, out, errOut, s.Logs())
	}
	out, _, _ = s.CLI(t, "", "executions", "list", "-o", "json")
	var list struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Items) != 1 {
		t.Fatalf("list: %v %s", err, out)
	}
	out, _, _ = s.CLI(t, "", "executions", "show", list.Items[0].ID, "-o", "json")
	var ex struct {
		Status      string            `json:"status"`
		ExitCode    *int              `json:"exit_code"`
		CPUTimeMS   *int64            `json:"cpu_time_ms"`
		PeakMemory  int64             `json:"peak_memory"`
		Enforcement map[string]string `json:"enforcement"`
	}
	if err := json.Unmarshal([]byte(out), &ex); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if ex.Status != "succeeded" || ex.ExitCode == nil || *ex.ExitCode != 0 || ex.CPUTimeMS == nil || ex.PeakMemory <= 0 ||
		ex.Enforcement["memory"] == "" || ex.Enforcement["pids"] == "" || ex.Enforcement["cpu"] == "" {
		t.Fatalf("execution: %s", out)
	}
	// A failing script: vigil run exits with its code.
	yaml = scriptYAML("exit3", "import sys\nsys.exit(3)", "")
	s.CLI(t, yaml, "apply", "-f", "-")
	if _, _, code := s.CLI(t, "", "run", "exit3", "--wait"); code != 3 {
		t.Fatalf("exit3: exit code %d", code)
	}
}

// TestScriptTalksToAPI: scripts reach the API with their own token, with and
// without the SDK, and without a network through the unix socket; the token
// dies with the run.
func TestScriptTalksToAPI(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the sandbox needs root")
	}
	s := startServer(t, t.TempDir(), nil)
	secret := "kind: Secret\nname: target\nspec:\n  data:\n    k: v\n"
	if _, errOut, code := s.CLI(t, secret+"---\nkind: ControlScript\nname: probe\nspec:\n  source: \"print(1)\"\n", "apply", "-f", "-"); code != 0 {
		t.Fatal(errOut)
	}
	plain := `import sys, json, os, urllib.request
url, tok = os.environ["VIGIL_API_URL"], os.environ["API_TOKEN"]
def call(method, path, body=None):
    req = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode() if body else None,
        headers={"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)
obj = call("GET", "/api/v1/objects/ControlScript/probe")
call("POST", "/api/v1/events", {"event_id": "SCRIPT_SAW", "obj_type": "controlscript", "obj_name": obj["name"], "id": "plain-" + os.environ["VIGIL_EXECUTION_ID"]})
print(tok)
`
	sdk := `import vigil
c = vigil.Client()
obj = c.get("ControlScript", "probe")
c.publish("SCRIPT_SAW", "controlscript", obj["name"], id="sdk-" + vigil.env()["VIGIL_EXECUTION_ID"])
print("ok")
`
	for _, tc := range []struct{ name, body, extra string }{
		{"plain", plain, ""},
		{"withsdk", sdk, ""},
		{"nonet", sdk, "  limits:\n    network: false\n"},
	} {
		if _, errOut, code := s.CLI(t, scriptYAML(tc.name, tc.body, tc.extra), "apply", "-f", "-"); code != 0 {
			t.Fatal(errOut)
		}
		out, errOut, code := s.CLI(t, "", "run", tc.name, "--wait")
		if code != 0 {
			t.Fatalf("%s: %d %s %s", tc.name, code, out, errOut)
		}
		if tc.name == "plain" {
			// The run's token no longer works.
			tok := strings.TrimSpace(out)
			cmd := exec.Command(vigilBin, "events", "list")
			cmd.Env = append(os.Environ(), "VIGIL_ADDR="+s.API, "VIGIL_TOKEN="+tok)
			if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "unauthorized") {
				t.Fatalf("the run's token outlived it: %v %s", err, b)
			}
		}
	}
	out, _, _ := s.CLI(t, "", "events", "list", "--event-id", "SCRIPT_SAW", "-o", "json")
	if n := strings.Count(out, `"type": "SCRIPT_SAW"`); n != 3 {
		t.Fatalf("%d SCRIPT_SAW events, want 3:\n%s", n, out)
	}
	// A script's token cannot read Secrets.
	deny := `import vigil
try:
    vigil.Client().get("Secret", "target")
    print("read")
except vigil.APIError as e:
    print(e.status)
`
	s.CLI(t, scriptYAML("deny", deny, ""), "apply", "-f", "-")
	if out, _, _ := s.CLI(t, "", "run", "deny", "--wait"); strings.TrimSpace(out) != "403" {
		t.Fatalf("script read a Secret: %q", out)
	}
}

// TestKillWithRunsInFlight kills `vigil serve` with 20 runs queued or
// running: after a restart every run has a final status (the running ones
// killed, the queued ones run), none vanishes, and no process is left.
func TestKillWithRunsInFlight(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the sandbox needs root")
	}
	dir := t.TempDir()
	s := startServer(t, dir, nil, "--runner-pool-size", "4")
	if _, errOut, code := s.CLI(t, scriptYAML("nap", "import time\nprint('up', flush=True)\ntime.sleep(1.5)\nprint('done')", "  timeout: 30s\n"), "apply", "-f", "-"); code != 0 {
		t.Fatal(errOut)
	}
	var ids []string
	for range 20 {
		out, errOut, code := s.CLI(t, "", "run", "nap")
		if code != 0 {
			t.Fatalf("run: %s", errOut)
		}
		ids = append(ids, strings.TrimSpace(out))
	}
	// Wait until some run, then kill the server hard.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(runningList(t, s), "running") {
		if time.Now().After(deadline) {
			t.Fatal("no run started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Everything below vigil: warm runs are forks of the fork server, whose
	// environment does not name the execution.
	below := s.Descendants()
	s.Kill()
	waitNoRunProcesses(t, ids)
	deadline = time.Now().Add(5 * time.Second)
	for left := vigiltest.Alive(below); len(left) > 0; left = vigiltest.Alive(below) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of vigil's %d processes outlived it: %v", len(left), len(below), left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("all %d processes below vigil died with it", len(below))

	s2 := startServer(t, dir, nil, "--runner-pool-size", "4")
	deadline = time.Now().Add(60 * time.Second)
	for {
		counts := map[string]int{}
		allFinal := true
		for _, id := range ids {
			out, errOut, code := s2.CLI(t, "", "executions", "show", id, "-o", "json")
			if code != 0 {
				t.Fatalf("execution %s vanished: %s", id, errOut)
			}
			var ex struct{ Status, Reason string }
			_ = json.Unmarshal([]byte(out), &ex)
			counts[ex.Status]++
			switch ex.Status {
			case "succeeded":
			case "killed":
				if !strings.Contains(ex.Reason, "stopped") {
					t.Fatalf("killed without the reason: %+v", ex)
				}
			case "queued", "running":
				allFinal = false
			default:
				t.Fatalf("%s ended %s: %s", id, ex.Status, ex.Reason)
			}
		}
		if allFinal {
			t.Logf("after restart: %v", counts)
			if counts["killed"] == 0 || counts["succeeded"] == 0 {
				t.Fatalf("want both killed and succeeded runs: %v", counts)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not all final after restart: %v", counts)
		}
		time.Sleep(200 * time.Millisecond)
	}
	waitNoRunProcesses(t, ids)
}

func runningList(t *testing.T, s *server) string {
	out, _, _ := s.CLI(t, "", "executions", "list", "--status", "running")
	return out
}

// waitNoRunProcesses fails unless no process of the runs is left within 5 s.
func waitNoRunProcesses(t *testing.T, ids []string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := runProcesses(ids)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes of the runs are left: %v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func runProcesses(ids []string) []string {
	var left []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, id := range ids {
			if strings.Contains(string(env), "VIGIL_EXECUTION_ID="+id+"\x00") {
				left = append(left, e.Name()+":"+id)
			}
		}
	}
	return left
}

// TestSIGTERMGraceAndQueueFull: SIGTERM lets a short run finish and kills a
// long one after the grace period, recording both; a full queue refuses a
// run with a clear error.
func TestSIGTERMGraceAndQueueFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the sandbox needs root")
	}
	dir := t.TempDir()
	s := startServer(t, dir, nil, "--shutdown-timeout", "2s", "--runner-pool-size", "2")
	yaml := scriptYAML("short", "import time\ntime.sleep(0.8)\nprint('finished')", "") + "---\n" +
		scriptYAML("long", "import time\nprint('up', flush=True)\ntime.sleep(60)", "  timeout: 120s\n")
	if _, errOut, code := s.CLI(t, yaml, "apply", "-f", "-"); code != 0 {
		t.Fatal(errOut)
	}
	shortID, _, _ := s.CLI(t, "", "run", "short")
	longID, _, _ := s.CLI(t, "", "run", "long")
	shortID, longID = strings.TrimSpace(shortID), strings.TrimSpace(longID)
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(runningList(t, s), "running") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("runs did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	term(t, s)
	if d := time.Since(start); d > 12*time.Second {
		t.Fatalf("stop took %s", d)
	}
	waitNoRunProcesses(t, []string{shortID, longID})
	// A short grace: it ends with a run going, and stops when the test does.
	s2 := startServer(t, dir, nil, "--runner-pool-size", "1", "--shutdown-timeout", "1s")
	show := func(id string) (string, string) {
		out, _, _ := s2.CLI(t, "", "executions", "show", id, "-o", "json")
		var ex struct{ Status, Reason, Stdout string }
		_ = json.Unmarshal([]byte(out), &ex)
		return ex.Status, ex.Reason + "|" + ex.Stdout
	}
	if st, why := show(shortID); st != "succeeded" || !strings.Contains(why, "finished") {
		t.Fatalf("short run: %s %s", st, why)
	}
	if st, why := show(longID); st != "killed" || !strings.Contains(why, "stopped") {
		t.Fatalf("long run: %s %s", st, why)
	}

	// Queue full: one run at a time, 100 queued per script at most.
	var lastErr string
	for i := 0; i < 110; i++ {
		_, errOut, code := s2.CLI(t, "", "run", "long")
		if code != 0 {
			lastErr = errOut
			break
		}
	}
	if !strings.Contains(lastErr, "queue") {
		t.Fatalf("a full queue was not refused clearly: %q", lastErr)
	}
}

// TestApplyAlertConfig: the binary knows the AlertConfig kind, stores a
// valid one and refuses an invalid condition or event id naming the field.
func TestApplyAlertConfig(t *testing.T) {
	s := startServer(t, t.TempDir(), nil)
	good := "kind: AlertConfig\nname: web-down\nspec:\n  events: [SERVER_DOWN]\n  obj_name: web-*\n  condition: \"details['se_hm_pool_details']['percent_servers_up'] < 50\"\n  category: rolling_window\n  threshold: 3\n  window: 60s\n  resolve_events: [SERVER_UP]\n"
	if out, errOut, code := s.CLI(t, good, "apply", "-f", "-"); code != 0 {
		t.Fatalf("apply: %d %s %s", code, out, errOut)
	}
	if out, _, _ := s.CLI(t, "", "get", "alertconfig", "web-down", "-o", "json"); !strings.Contains(out, "rolling_window") {
		t.Fatalf("get: %s", out)
	}
	for _, c := range []struct{ spec, want string }{
		{"  events: [SERVER_DOWN]\n  condition: \"obj_nme == 'web'\"\n", "spec.condition: line 1, column 1: undeclared reference to 'obj_nme'"},
		{"  events: [SERVR_DOWN]\n", "spec.events[0]: unknown event id \"SERVR_DOWN\" (did you mean SERVER_DOWN?)"},
		{"  events: [SERVER_DOWN]\n  summary: \"{{.Pool}}\"\n", "spec.summary"},
	} {
		_, errOut, code := s.CLI(t, "kind: AlertConfig\nname: bad\nspec:\n"+c.spec, "apply", "-f", "-")
		if code == 0 || !strings.Contains(errOut, "AlertConfig/bad") || !strings.Contains(errOut, c.want) {
			t.Errorf("apply %q: %d %q, want %q", c.spec, code, errOut, c.want)
		}
	}
}

// TestBinaryLeavesTestHelpersOut: the vCenter simulator (and govmomi with
// it) serves tests only; the binary must not link it.
func TestBinaryLeavesTestHelpersOut(t *testing.T) {
	info, err := buildinfo.ReadFile(vigilBin)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range info.Deps {
		if strings.Contains(d.Path, "govmomi") || strings.Contains(d.Path, "jsonschema") {
			t.Errorf("the binary links %s %s", d.Path, d.Version)
		}
	}
	if len(info.Deps) == 0 {
		t.Fatal("no dependencies in the build info")
	}
}

// TestTwoInstancesOnOneHost: a second `vigil serve` with its own data
// directory starts while the first runs a script, and leaves that run
// alone (each instance sweeps only its own cgroup parent).
func TestTwoInstancesOnOneHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the sandbox needs root")
	}
	a := startServer(t, t.TempDir(), nil)
	yaml := scriptYAML("slow", "import time\nprint('started', flush=True)\ntime.sleep(3)\nprint('done')", "")
	if _, errOut, code := a.CLI(t, yaml, "apply", "-f", "-"); code != 0 {
		t.Fatal(errOut)
	}
	done := make(chan string, 1)
	go func() {
		out, errOut, code := a.CLI(t, "", "run", "slow", "--wait")
		done <- fmt.Sprintf("%d %q %q", code, out, errOut)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(runningList(t, a), "running") {
		if time.Now().After(deadline) {
			t.Fatalf("the run did not start\n%s", a.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	b := startServer(t, t.TempDir(), nil)
	if _, errOut, code := b.CLI(t, yaml, "apply", "-f", "-"); code != 0 {
		t.Fatal(errOut)
	}
	if out, errOut, code := b.CLI(t, "", "run", "slow", "--wait"); code != 0 || out != "started\ndone\n" {
		t.Fatalf("run on the second instance: %d %q %q", code, out, errOut)
	}
	if got := <-done; got != `0 "started\ndone\n" ""` {
		t.Fatalf("run on the first instance: %s\n%s", got, a.Logs())
	}
	// A cgroup parent that is not a path of plain names is refused.
	_, errOut, code := a.CLI(t, "", "serve", "--data-dir", t.TempDir(), "--cgroup-parent", "../escape")
	if code == 0 || !strings.Contains(errOut, `--cgroup-parent "../escape": want a relative path`) {
		t.Fatalf("serve --cgroup-parent ../escape: %d %q", code, errOut)
	}
}
