package integrations

// Tests of the notification integrations (slack, teams, pagerduty,
// servicenow, webhook): each script.py runs as a ControlScript would, with
// /usr/bin/python3, the alert in argv[1] and the Secret keys in the
// environment, against a real HTTP server on loopback that plays the
// vendor. What the script sends is checked against the vendor's published
// schemas, SDK validators, examples and limits in testdata/<name>/ (see
// each SOURCE.md), never against our own encoder.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// python is the interpreter the runner uses.
const python = "/usr/bin/python3"

// here is this package's directory.
var here = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}()

// ---- running a script --------------------------------------------------------

// scriptRun is the outcome of one run of a script.
type scriptRun struct {
	Code           int
	Stdout, Stderr string
	Elapsed        time.Duration
}

func (r scriptRun) String() string {
	return fmt.Sprintf("exit %d after %v\nstdout: %s\nstderr: %s", r.Code, r.Elapsed.Round(time.Millisecond), r.Stdout, r.Stderr)
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// runScript runs integrations/<name>/script.py as a ControlScript: argv[1]
// is the alert, the environment the runner's contract plus env (which wins).
func runScript(t *testing.T, name, alert string, env map[string]string) scriptRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, filepath.Join(here, name, "script.py"), alert)
	cmd.Env = []string{
		"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + t.TempDir(), "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1",
		"PYTHONPATH=" + filepath.Join(here, "..", "contrib", "python"),
		"API_TOKEN=vgl-test-token", "VIGIL_API_TOKEN=vgl-test-token", "VIGIL_API_URL=http://127.0.0.1:9",
		"USER=admin", "TENANT=admin", "VERSION=test", "DOCKER_GATEWAY=127.0.0.1",
		"VIGIL_EXECUTION_ID=ex-" + strconv.FormatInt(time.Now().UnixNano(), 36),
	}
	keys := slices.Sorted(maps.Keys(env))
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := scriptRun{Stdout: stdout.String(), Stderr: stderr.String(), Elapsed: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.Code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run %s: %v", name, err)
	}
	for k, v := range env {
		if secretEnv[k] && len(v) >= 8 && (strings.Contains(r.Stdout, v) || strings.Contains(r.Stderr, v)) {
			t.Errorf("%s printed the value of %s:\n%s", name, k, r)
		}
	}
	return r
}

// secretEnv are the environment variables that hold Secret keys.
var secretEnv = map[string]bool{
	"SLACK_WEBHOOK_URL": true, "TEAMS_WEBHOOK_URL": true, "PAGERDUTY_ROUTING_KEY": true,
	"SERVICENOW_USER": true, "SERVICENOW_PASSWORD": true, "WEBHOOK_URL": true, "WEBHOOK_SECRET": true,
}

// ---- alerts ---------------------------------------------------------------------

// alertName is how vigil names an alert (actions.AviShape).
func alertName(config, obj string, raised time.Time, events int) string {
	return fmt.Sprintf("%s-%s-%.6f-%d-%d", config, obj, float64(raised.UnixMicro())/1e6, raised.Unix(), events)
}

var raisedAt = time.Unix(1700000000, 123456000)

// makeAlert is an alert in Avi's shape with n SERVER_DOWN events.
func makeAlert(level, reason string, n int) map[string]any {
	var evs []any
	for i := range n {
		evs = append(evs, map[string]any{
			"event_id": "SERVER_DOWN", "obj_name": "web", "obj_uuid": "pool-1",
			"report_timestamp": raisedAt.Unix() + int64(i),
			"event_details": map[string]any{"se_hm_pool_details": map[string]any{
				"pool": "web", "server": map[string]any{"ip": map[string]any{"addr": fmt.Sprintf("10.0.0.%d", i+1)}, "port": 80},
			}},
		})
	}
	return map[string]any{
		"name": alertName("web-down", "pool-1", raisedAt, n), "level": level, "reason": reason,
		"obj_name": "web", "obj_uuid": "pool-1", "threshold": 1, "throttle_count": 0, "events": evs,
	}
}

func encodeAlert(t *testing.T, a any) string {
	t.Helper()
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(a); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(b.String())
}

// hostileAlerts are alerts a script must still turn into a valid payload.
// An alert reaches a script as one argument, and Linux caps one argument at
// 128 KiB (MAX_ARG_STRLEN), so "huge" stays below that.
func hostileAlerts() map[string]any {
	huge := strings.Repeat("x<&>*_`", 3000)
	var many []any
	for i := range 30 {
		many = append(many, map[string]any{
			"event_id": "SERVER_DOWN_" + huge[:200], "obj_name": huge[:300], "report_timestamp": 1700000000 + i,
			"event_details": map[string]any{"blob": strings.Repeat("d", 1500)},
		})
	}
	return map[string]any{
		"empty": map[string]any{},
		"huge": map[string]any{
			"name": huge + "-1700000000.123456-1700000000-30", "level": "ALERT_HIGH", "reason": "threshold_exceeded",
			"obj_name": huge, "obj_uuid": "pool-\u2603-" + huge[:500], "threshold": huge[:900], "events": many,
		},
		"odd types": map[string]any{
			"name": 42, "level": nil, "reason": []any{"x"}, "obj_name": map[string]any{"a": 1}, "threshold": "x",
			"throttle_count": "many", "events": []any{map[string]any{"event_id": 7, "report_timestamp": "soon", "event_details": map[string]any{"x": []any{1, 2}}}},
		},
		"unknown level": makeAlert("ALERT_SEVERE", "threshold_exceeded", 1),
	}
}

// ---- a fake vendor ------------------------------------------------------------

// exchange is one request the fake vendor got.
type exchange struct {
	Method, Path string
	Query        url.Values
	Header       http.Header
	Body         []byte
	At           time.Time
}

// reply is what the fake vendor answers.
type reply struct {
	Status int
	Header map[string]string
	Body   string
}

// fakeVendor is an HTTP server on loopback: it answers the queued replies
// in order, then calls serve.
type fakeVendor struct {
	*httptest.Server
	mu    sync.Mutex
	log   []exchange
	queue []reply
	serve func(exchange) reply
}

func newFake(t *testing.T, serve func(exchange) reply, queue ...reply) *fakeVendor {
	t.Helper()
	f := &fakeVendor{queue: queue, serve: serve}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ex := exchange{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body, At: time.Now()}
		f.mu.Lock()
		f.log = append(f.log, ex)
		var rep reply
		if len(f.queue) > 0 {
			rep, f.queue = f.queue[0], f.queue[1:]
			f.mu.Unlock()
		} else {
			f.mu.Unlock()
			rep = f.serve(ex)
		}
		for k, v := range rep.Header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(rep.Status)
		_, _ = io.WriteString(w, rep.Body)
	}))
	t.Cleanup(f.Close)
	return f
}

// concurrently runs one subtest per name, all at once: they spend their
// time waiting on scripts and their waits, so they are not held to
// -parallel's bound (t.Run may be called from several goroutines).
func concurrently(t *testing.T, names []string, f func(t *testing.T, name string)) {
	t.Helper()
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Go(func() { t.Run(name, func(t *testing.T) { f(t, name) }) })
	}
	wg.Wait()
}

func (f *fakeVendor) requests() []exchange {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

// ---- Slack: checked by Slack's own Block Kit models (python-slack-sdk) -----------

// slackValidator reads a JSON list of messages on stdin and prints, for
// each, the list of its faults. Blocks are read by the Block Kit classes of
// Slack's SDK (testdata/slack/slack_sdk), whose validators enforce Slack's
// limits; a block that does not read back as sent holds fields Slack's
// models do not know. Top-level fields are those of Slack's incoming webhook
// documentation, the text limit that of the SDK's Message.
const slackValidator = `
import json, pathlib, re, sys
root = pathlib.Path(sys.argv[1])
from slack_sdk.models.blocks import Block
blocks_py = (root / "slack_sdk/models/blocks/blocks.py").read_text()
message_py = (root / "slack_sdk/models/messages/message.py").read_text()
hooks_md = (root / "index_incoming_webhooks.md").read_text()
field_max = int(re.search(r"Maximum length for the text in each item is (\d+) characters", blocks_py).group(1))
text_max = int(re.search(r"len\(self\.text\) > (\d+)", message_py).group(1))
top = {"blocks"} | {k for k in ("text", "username", "icon_emoji", "icon_url", "channel") if "` + "`%s`" + `" % k in hooks_md}
out = []
for msg in json.load(sys.stdin):
    errs = []
    out.append(errs)
    if not isinstance(msg, dict):
        errs.append("not a JSON object")
        continue
    errs += ["unknown top-level field %r" % k for k in msg if k not in top]
    text = msg.get("text")
    if not isinstance(text, str) or not text:
        errs.append("text must be a non-empty string")
    elif len(text) > text_max:
        errs.append("text is %d characters; Slack cuts at %d" % (len(text), text_max))
    blocks = msg.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        errs.append("blocks must be a non-empty list")
        continue
    for i, b in enumerate(blocks):
        try:
            blk = Block.parse(b)
            if blk is None:
                errs.append("blocks[%d]: not a block Slack knows: %r" % (i, b.get("type")))
                continue
            back = blk.to_dict()
        except Exception as e:
            errs.append("blocks[%d]: %s: %s" % (i, type(e).__name__, e))
            continue
        if back != b:
            errs.append("blocks[%d]: Slack's model reads it as %s" % (i, json.dumps(back)[:300]))
        for j, f in enumerate(b.get("fields") or []):
            if len(f.get("text", "")) > field_max:
                errs.append("blocks[%d].fields[%d]: %d characters, at most %d" % (i, j, len(f["text"]), field_max))
json.dump(out, sys.stdout)
`

// checkSlack returns the faults of each message, as Slack's SDK sees them.
func checkSlack(t *testing.T, bodies [][]byte) [][]string {
	t.Helper()
	msgs := make([]json.RawMessage, len(bodies))
	for i, b := range bodies {
		if !json.Valid(b) {
			b, _ = json.Marshal(string(b))
		}
		msgs[i] = b
	}
	in, _ := json.Marshal(msgs)
	dir := filepath.Join(here, "testdata", "slack")
	cmd := exec.CommandContext(context.Background(), python, "-c", slackValidator, dir)
	cmd.Env = []string{"PYTHONPATH=" + dir, "PYTHONDONTWRITEBYTECODE=1", "LANG=C.UTF-8", "SLACKCLIENT_SKIP_DEPRECATION=1"}
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("slack validator: %v\n%s", err, stderr.String())
	}
	var faults [][]string
	if err := json.Unmarshal(out, &faults); err != nil {
		t.Fatalf("slack validator: %v: %s", err, out)
	}
	return faults
}

func requireSlackValid(t *testing.T, bodies [][]byte) {
	t.Helper()
	for i, f := range checkSlack(t, bodies) {
		if len(f) > 0 {
			t.Errorf("message %d breaks Slack's format: %s\n%s", i, strings.Join(f, "; "), clipped(bodies[i]))
		}
	}
}

func clipped(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "..."
	}
	return string(b)
}

// ---- Teams: Adaptive Card 1.5 schema, Teams' message envelope and size limit ------

type teamsChecker struct {
	card     *jsonschema.Schema
	envelope map[string]any // the published example message
	maxBytes int
}

var teamsOnce = sync.OnceValues(func() (*teamsChecker, error) {
	c := jsonschema.NewCompiler()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(mustRead("teams/adaptive-card-1.5.json")))
	if err != nil {
		return nil, err
	}
	const id = "http://adaptivecards.io/schemas/adaptive-card.json"
	if err := c.AddResource(id, doc); err != nil {
		return nil, err
	}
	card, err := c.Compile(id)
	if err != nil {
		return nil, err
	}
	md := string(mustRead("teams/connectors-using-excerpt.md"))
	m := regexp.MustCompile("(?s)```json\n(.*?)\n```").FindStringSubmatch(md)
	if m == nil {
		return nil, errors.New("no example message in connectors-using-excerpt.md")
	}
	var env map[string]any
	if err := json.Unmarshal([]byte(m[1]), &env); err != nil {
		return nil, fmt.Errorf("example message: %w", err)
	}
	limit := regexp.MustCompile(`The message size limit is (\d+) KB`).FindStringSubmatch(string(mustRead("teams/add-incoming-webhook-excerpt.md")))
	if limit == nil {
		return nil, errors.New("no size limit in add-incoming-webhook-excerpt.md")
	}
	kb, _ := strconv.Atoi(limit[1])
	return &teamsChecker{card: card, envelope: env, maxBytes: kb * 1000}, nil
})

func mustRead(name string) []byte {
	b, err := os.ReadFile(filepath.Join(here, "testdata", name))
	if err != nil {
		panic(err)
	}
	return b
}

// checkTeams returns why body is not a message Teams takes, or nil.
func checkTeams(t *testing.T, body []byte) error {
	t.Helper()
	tc, err := teamsOnce()
	if err != nil {
		t.Fatal(err)
	}
	if len(body) > tc.maxBytes {
		return fmt.Errorf("%d bytes, over Teams' limit of %d", len(body), tc.maxBytes)
	}
	var msg map[string]any
	if err := json.Unmarshal(body, &msg); err != nil {
		return err
	}
	if !sameKeys(msg, tc.envelope) || msg["type"] != tc.envelope["type"] {
		return fmt.Errorf("message fields %v (type %v), the published example has %v (type %v)",
			slices.Sorted(maps.Keys(msg)), msg["type"], slices.Sorted(maps.Keys(tc.envelope)), tc.envelope["type"])
	}
	want := tc.envelope["attachments"].([]any)[0].(map[string]any)
	atts, _ := msg["attachments"].([]any)
	if len(atts) == 0 {
		return errors.New("no attachments")
	}
	for i, a := range atts {
		att, _ := a.(map[string]any)
		if !sameKeys(att, want) || att["contentType"] != want["contentType"] || att["contentUrl"] != want["contentUrl"] {
			return fmt.Errorf("attachments[%d]: %v, the published example has %v", i, att, want)
		}
		content, _ := att["content"].(map[string]any)
		if content["version"] != "1.5" {
			return fmt.Errorf("attachments[%d]: card version %v, checked against the 1.5 schema", i, content["version"])
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(mustJSON(att["content"])))
		if err != nil {
			return err
		}
		if err := tc.card.Validate(inst); err != nil {
			return fmt.Errorf("attachments[%d].content: %w", i, err)
		}
	}
	return nil
}

func sameKeys(a, b map[string]any) bool {
	return slices.Equal(slices.Sorted(maps.Keys(a)), slices.Sorted(maps.Keys(b)))
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// ---- PagerDuty: the Events API v2 OpenAPI schema and the documented limits -----

type pagerdutyChecker struct {
	event                *jsonschema.Schema
	summaryMax, dedupMax int
	maxBytes             int
	success, failure     string // the published example answers, Success and Error
}

var pagerdutyOnce = sync.OnceValues(func() (*pagerdutyChecker, error) {
	raw := mustRead("pagerduty/events-v2-openapiv3.json")
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	const id = "https://events.pagerduty.com/openapiv3.json"
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(id, doc); err != nil {
		return nil, err
	}
	sch, err := c.Compile(id + "#/paths/~1enqueue/post/requestBody/content/application~1json/schema")
	if err != nil {
		return nil, err
	}
	var api struct {
		Components struct {
			Responses map[string]struct {
				Content map[string]struct {
					Examples map[string]struct {
						Value json.RawMessage `json:"value"`
					} `json:"examples"`
				} `json:"content"`
			} `json:"responses"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &api); err != nil {
		return nil, err
	}
	resp := api.Components.Responses
	trigger := string(mustRead("pagerduty/02-Trigger-Events.md"))
	overview := string(mustRead("pagerduty/01-Overview.md"))
	num := func(re, text string) int {
		m := regexp.MustCompile(re).FindStringSubmatch(text)
		if m == nil {
			panic("pagerduty docs: no match for " + re)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return &pagerdutyChecker{
		event:      sch,
		summaryMax: num("`payload.summary`.*maximum permitted length of this property is (\\d+) characters", trigger),
		dedupMax:   num("`dedup_key`.*maximum permitted length of this property is (\\d+) characters", trigger),
		maxBytes:   num(`payloads are limited to \*\*(\d+) KB\*\*`, overview) * 1000,
		success:    string(resp["Success"].Content["application/json"].Examples["default"].Value),
		failure:    string(resp["Error"].Content["application/json"].Examples["response"].Value),
	}, nil
})

func pagerduty(t *testing.T) *pagerdutyChecker {
	t.Helper()
	pc, err := pagerdutyOnce()
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

// checkPagerDuty returns why body is not an event PagerDuty takes, or nil.
func checkPagerDuty(t *testing.T, body []byte) error {
	pc := pagerduty(t)
	if len(body) > pc.maxBytes {
		return fmt.Errorf("%d bytes, over PagerDuty's %d", len(body), pc.maxBytes)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return err
	}
	if err := pc.event.Validate(inst); err != nil {
		return err
	}
	var ev struct {
		DedupKey string `json:"dedup_key"`
		Payload  struct {
			Summary string `json:"summary"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return err
	}
	if n := len([]rune(ev.Payload.Summary)); n > pc.summaryMax {
		return fmt.Errorf("summary is %d characters, at most %d", n, pc.summaryMax)
	}
	if n := len([]rune(ev.DedupKey)); n > pc.dedupMax {
		return fmt.Errorf("dedup_key is %d characters, at most %d", n, pc.dedupMax)
	}
	return nil
}

// ---- ServiceNow: the Table API's published incident records and field limits ---

type servicenowChecker struct {
	fields   map[string]bool // the fields of the published incident record
	post     map[string]any  // the published POST answer's record
	limits   map[string]int
	resolved string // the state value of Resolved
	limited  string // the published 429 answer
}

var servicenowOnce = sync.OnceValues(func() (*servicenowChecker, error) {
	md := string(mustRead("servicenow/c_TableAPI.md"))
	sections := map[string]string{}
	for _, s := range strings.Split(md, "\n## ")[1:] {
		head, rest, _ := strings.Cut(s, "\n")
		sections[head] = rest
	}
	answer := func(head string) (map[string]any, error) {
		blocks := regexp.MustCompile("(?s)```\n(.*?)\n```").FindAllStringSubmatch(sections[head], -1)
		for i := len(blocks) - 1; i >= 0; i-- {
			if strings.HasPrefix(blocks[i][1], "{") {
				var v map[string]any
				err := json.Unmarshal([]byte(blocks[i][1]), &v)
				return v, err
			}
		}
		return nil, fmt.Errorf("c_TableAPI.md: no example answer under %q", head)
	}
	post, err := answer(`Table - POST /now/table/\{tableName\}`)
	if err != nil {
		return nil, err
	}
	rec, _ := post["result"].(map[string]any)
	if rec["sys_class_name"] != "incident" {
		return nil, errors.New("c_TableAPI.md: the POST example is not an incident")
	}
	sc := &servicenowChecker{fields: map[string]bool{}, post: rec, limits: map[string]int{}}
	for k := range rec {
		sc.fields[k] = true
	}
	for _, m := range regexp.MustCompile(`id="casetable-([a-z_]+)-entry">[^<]*?Maximum length: ([\d,]+)`).FindAllStringSubmatch(string(mustRead("servicenow/case-api-task-fields.md")), -1) {
		n, _ := strconv.Atoi(strings.ReplaceAll(m[2], ",", ""))
		sc.limits[m[1]] = n
	}
	if len(sc.limits) < 5 {
		return nil, fmt.Errorf("case-api-task-fields.md: limits %v", sc.limits)
	}
	m := regexp.MustCompile(`function resolveIncident\(\) \{[\s\S]*?g_form\.setValue\('state', (\d+)\)`).FindStringSubmatch(string(mustRead("servicenow/useful-client-side-scripts.md")))
	if m == nil {
		return nil, errors.New("useful-client-side-scripts.md: no resolve example")
	}
	sc.resolved = m[1]
	m = regexp.MustCompile("(?s)```\n(\\{\\s*\"error\".*?)\n```").FindStringSubmatch(string(mustRead("servicenow/inbound-REST-API-rate-limiting.md")))
	if m == nil {
		return nil, errors.New("inbound-REST-API-rate-limiting.md: no 429 answer")
	}
	sc.limited = m[1]
	return sc, nil
})

func servicenow(t *testing.T) *servicenowChecker {
	t.Helper()
	sc, err := servicenowOnce()
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// checkServiceNowWrite returns why body is not a record the Table API takes
// for the incident table, or nil.
func checkServiceNowWrite(t *testing.T, body []byte) error {
	sc := servicenow(t)
	var rec map[string]any
	if err := json.Unmarshal(body, &rec); err != nil {
		return err
	}
	if len(rec) == 0 {
		return errors.New("no fields")
	}
	for k, v := range rec {
		if !sc.fields[k] {
			return fmt.Errorf("%s is not a field of the published incident record", k)
		}
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s is %T; the Table API's records hold strings", k, v)
		}
		if n, ok := sc.limits[k]; ok && len([]rune(s)) > n {
			return fmt.Errorf("%s is %d characters, at most %d", k, len([]rune(s)), n)
		}
	}
	if rec["state"] == sc.resolved && (rec["close_code"] == nil || rec["close_code"] == "" || rec["close_notes"] == nil || rec["close_notes"] == "") {
		return errors.New("resolved without close_code and close_notes")
	}
	return nil
}

// fakeServiceNow is an incident table behind the Table API.
type fakeServiceNow struct {
	t         *testing.T
	sc        *servicenowChecker
	user, pw  string
	mu        sync.Mutex
	incidents []map[string]any // in creation order
}

func newFakeServiceNow(t *testing.T, user, pw string) *fakeServiceNow {
	return &fakeServiceNow{t: t, sc: servicenow(t), user: user, pw: pw}
}

func tableResult(v any, status int) reply {
	return reply{Status: status, Header: map[string]string{"Content-Type": "application/json"}, Body: string(mustJSON(map[string]any{"result": v}))}
}

func pick(rec map[string]any, fields string) map[string]any {
	if fields == "" {
		return maps.Clone(rec)
	}
	out := map[string]any{}
	for _, f := range strings.Split(fields, ",") {
		out[f] = rec[f]
	}
	return out
}

func (s *fakeServiceNow) serve(ex exchange) reply {
	if u, p, ok := (&http.Request{Header: ex.Header}).BasicAuth(); !ok || u != s.user || p != s.pw {
		return reply{Status: 401, Body: `{"error":{"message":"User Not Authenticated","detail":"Required to provide Auth information"},"status":"failure"}`}
	}
	if ex.Header.Get("Accept") != "application/json" {
		s.t.Errorf("%s %s: Accept %q", ex.Method, ex.Path, ex.Header.Get("Accept"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fields := ex.Query.Get("sysparm_fields")
	switch {
	case ex.Method == "GET" && ex.Path == "/api/now/table/incident":
		q := ex.Query.Get("sysparm_query")
		terms := strings.Split(q, "^")
		cid, ok := strings.CutPrefix(terms[0], "correlation_id=")
		if !ok || ex.Query.Get("sysparm_limit") != "1" {
			s.t.Errorf("GET incident: query %q limit %q", q, ex.Query.Get("sysparm_limit"))
		}
		var out []any
		for i := len(s.incidents) - 1; i >= 0; i-- { // newest first
			if s.incidents[i]["correlation_id"] == cid {
				out = append(out, pick(s.incidents[i], fields))
				break
			}
		}
		if out == nil {
			out = []any{}
		}
		return tableResult(out, 200)
	case ex.Method == "POST" && ex.Path == "/api/now/table/incident":
		if err := checkServiceNowWrite(s.t, ex.Body); err != nil {
			s.t.Errorf("POST incident: %v\n%s", err, clipped(ex.Body))
			return reply{Status: 400, Body: `{"error":{"message":"Invalid request"},"status":"failure"}`}
		}
		rec := maps.Clone(s.sc.post)
		var in map[string]any
		_ = json.Unmarshal(ex.Body, &in)
		maps.Copy(rec, in)
		id := make([]byte, 16)
		_, _ = rand.Read(id)
		rec["sys_id"] = hex.EncodeToString(id)
		rec["number"] = fmt.Sprintf("INC%07d", 10001+len(s.incidents))
		rec["state"], rec["incident_state"], rec["active"] = "1", "1", "true"
		s.incidents = append(s.incidents, rec)
		return tableResult(pick(rec, fields), 201)
	case ex.Method == "PATCH" && strings.HasPrefix(ex.Path, "/api/now/table/incident/"):
		if err := checkServiceNowWrite(s.t, ex.Body); err != nil {
			s.t.Errorf("PATCH incident: %v\n%s", err, clipped(ex.Body))
			return reply{Status: 400, Body: `{"error":{"message":"Invalid request"},"status":"failure"}`}
		}
		id := strings.TrimPrefix(ex.Path, "/api/now/table/incident/")
		for _, rec := range s.incidents {
			if rec["sys_id"] == id {
				var in map[string]any
				_ = json.Unmarshal(ex.Body, &in)
				if wn, ok := in["work_notes"].(string); ok {
					rec["notes"] = append(slices.Clone(asList(rec["notes"])), wn)
					delete(in, "work_notes")
				}
				maps.Copy(rec, in)
				return tableResult(pick(rec, fields), 200)
			}
		}
		return reply{Status: 404, Body: `{"error":{"message":"No Record found","detail":"Record doesn't exist or ACL restricts the record retrieval"},"status":"failure"}`}
	}
	s.t.Errorf("unexpected %s %s", ex.Method, ex.Path)
	return reply{Status: 400, Body: `{"error":{"message":"Requested URI does not represent any resource"},"status":"failure"}`}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// ---- Standard Webhooks: the spec's test vectors -------------------------------

type swVectors struct {
	Sign []struct {
		Secret    string `json:"secret"`
		MsgID     string `json:"msg_id"`
		Timestamp int64  `json:"timestamp"`
		Payload   string `json:"payload"`
		Signature string `json:"signature"`
	} `json:"sign"`
	Invalid   []string `json:"invalid_signatures"`
	Multiple  string   `json:"multiple_signatures"`
	Tolerance int64    `json:"tolerance_seconds"`
}

// swSign is the Standard Webhooks v1 signature of one message.
func swSign(secret, msgID string, ts int64, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", msgID, ts)
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// swVerify checks a webhook-signature header (space-separated signatures).
func swVerify(secret, msgID string, ts int64, body []byte, header string) error {
	want, err := swSign(secret, msgID, ts, body)
	if err != nil {
		return err
	}
	for _, sig := range strings.Fields(header) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return errors.New("no valid v1 signature")
}

func webhookVectors(t *testing.T) swVectors {
	t.Helper()
	var v swVectors
	if err := json.Unmarshal(mustRead("webhook/vectors.json"), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// eventTypeRE is the spec's advice for event types: full-stop delimited
// identifiers of [a-zA-Z0-9_].
var eventTypeRE = regexp.MustCompile(`^[a-zA-Z0-9_]+(\.[a-zA-Z0-9_]+)*$`)

// checkWebhook returns why a delivery breaks the Standard Webhooks spec, or nil.
func checkWebhook(ex exchange, secret string, tolerance int64) error {
	id, tsText := ex.Header.Get("webhook-id"), ex.Header.Get("webhook-timestamp")
	if id == "" || tsText == "" {
		return fmt.Errorf("webhook-id %q, webhook-timestamp %q", id, tsText)
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q is not a unix time", tsText)
	}
	if d := time.Now().Unix() - ts; d > tolerance || d < -tolerance {
		return fmt.Errorf("webhook-timestamp %d is %ds from now", ts, d)
	}
	if secret != "" {
		if err := swVerify(secret, id, ts, ex.Body, ex.Header.Get("webhook-signature")); err != nil {
			return err
		}
	} else if ex.Header.Get("webhook-signature") != "" {
		return errors.New("signed without a secret")
	}
	var doc struct {
		Type      string         `json:"type"`
		Timestamp string         `json:"timestamp"`
		Data      map[string]any `json:"data"`
	}
	if err := json.Unmarshal(ex.Body, &doc); err != nil {
		return err
	}
	if !eventTypeRE.MatchString(doc.Type) {
		return fmt.Errorf("type %q", doc.Type)
	}
	if _, err := time.Parse(time.RFC3339, doc.Timestamp); err != nil {
		return fmt.Errorf("timestamp %q is not ISO 8601: %w", doc.Timestamp, err)
	}
	if doc.Data == nil {
		return errors.New("no data")
	}
	return nil
}

// ---- the vendors, for the tests all of them share ----------------------------------

type vendorCase struct {
	name, prefix string
	// env points the script at the fake.
	env func(base string) map[string]string
	// ok is the vendor's answer to a request that succeeds.
	ok func(t *testing.T) func(exchange) reply
	// badRequest is the vendor's 400.
	badRequest reply
	// check returns why the requests the fake got break the vendor's format.
	check func(t *testing.T, exs []exchange) error
}

func vendors(t *testing.T) []vendorCase {
	const whsec = "whsec_U0VDUkVULXNpZ25pbmcta2V5LWZvci10ZXN0cw=="
	return []vendorCase{{
		name: "slack", prefix: "SLACK",
		env: func(base string) map[string]string {
			return map[string]string{"SLACK_WEBHOOK_URL": base + "/services/T000/B000/SECRET-slack-token"}
		},
		ok: func(*testing.T) func(exchange) reply {
			return func(exchange) reply { return reply{Status: 200, Body: "ok"} }
		},
		badRequest: reply{Status: 400, Body: "invalid_payload"},
		check: func(t *testing.T, exs []exchange) error {
			var bodies [][]byte
			for _, ex := range exs {
				bodies = append(bodies, ex.Body)
			}
			for i, f := range checkSlack(t, bodies) {
				if len(f) > 0 {
					return fmt.Errorf("message %d: %s", i, strings.Join(f, "; "))
				}
			}
			return nil
		},
	}, {
		name: "teams", prefix: "TEAMS",
		env: func(base string) map[string]string {
			return map[string]string{"TEAMS_WEBHOOK_URL": base + "/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=SECRET-teams-sig"}
		},
		ok: func(*testing.T) func(exchange) reply {
			return func(exchange) reply { return reply{Status: 202} }
		},
		badRequest: reply{Status: 400, Body: `{"error":{"code":"InvalidRequestContent","message":"The input body for trigger 'manual' of type 'Request' did not match its schema definition."}}`},
		check: func(t *testing.T, exs []exchange) error {
			for _, ex := range exs {
				if err := checkTeams(t, ex.Body); err != nil {
					return err
				}
			}
			return nil
		},
	}, {
		name: "pagerduty", prefix: "PAGERDUTY",
		env: func(base string) map[string]string {
			return map[string]string{"PAGERDUTY_ROUTING_KEY": "SECRET0pagerduty0routing0key0xx", "PAGERDUTY_EVENTS_URL": base + "/v2/enqueue"}
		},
		ok: func(t *testing.T) func(exchange) reply {
			success := pagerduty(t).success
			return func(exchange) reply {
				return reply{Status: 202, Header: map[string]string{"Content-Type": "application/json"}, Body: success}
			}
		},
		badRequest: reply{Status: 400, Header: map[string]string{"Content-Type": "application/json"}, Body: pagerduty(t).failure},
		check: func(t *testing.T, exs []exchange) error {
			for _, ex := range exs {
				if err := checkPagerDuty(t, ex.Body); err != nil {
					return fmt.Errorf("%w\n%s", err, clipped(ex.Body))
				}
			}
			return nil
		},
	}, {
		name: "servicenow", prefix: "SERVICENOW",
		env: func(base string) map[string]string {
			return map[string]string{"SERVICENOW_INSTANCE_URL": base, "SERVICENOW_USER": "vigil.integration", "SERVICENOW_PASSWORD": "SECRET-servicenow-pw"}
		},
		ok: func(t *testing.T) func(exchange) reply {
			return newFakeServiceNow(t, "vigil.integration", "SECRET-servicenow-pw").serve
		},
		badRequest: reply{Status: 400, Header: map[string]string{"Content-Type": "application/json"}, Body: `{"error":{"message":"Invalid request","detail":"Bad request"},"status":"failure"}`},
		check: func(t *testing.T, exs []exchange) error {
			for _, ex := range exs {
				if ex.Method == "POST" || ex.Method == "PATCH" {
					if err := checkServiceNowWrite(t, ex.Body); err != nil {
						return fmt.Errorf("%s %s: %w", ex.Method, ex.Path, err)
					}
				}
			}
			return nil
		},
	}, {
		name: "webhook", prefix: "WEBHOOK",
		env: func(base string) map[string]string {
			return map[string]string{"WEBHOOK_URL": base + "/hooks/SECRET-webhook-path", "WEBHOOK_SECRET": whsec}
		},
		ok: func(*testing.T) func(exchange) reply {
			return func(exchange) reply { return reply{Status: 204} }
		},
		badRequest: reply{Status: 400, Body: "bad request"},
		check: func(t *testing.T, exs []exchange) error {
			for _, ex := range exs {
				if err := checkWebhook(ex, whsec, webhookVectors(t).Tolerance); err != nil {
					return err
				}
			}
			return nil
		},
	}}
}

func vendorsByName(t *testing.T) map[string]vendorCase {
	out := map[string]vendorCase{}
	for _, v := range vendors(t) {
		out[v.name] = v
	}
	return out
}

// ---- the tests -------------------------------------------------------------------

// TestNotifyDelivers: each integration sends a raised and a resolved alert
// in the vendor's published format, prints what it sent, and exits 0.
func TestNotifyDelivers(t *testing.T) {
	t.Parallel()
	byName := vendorsByName(t)
	concurrently(t, slices.Sorted(maps.Keys(byName)), func(t *testing.T, name string) {
		v := byName[name]
		f := newFake(t, v.ok(t))
		for _, a := range []map[string]any{makeAlert("ALERT_HIGH", "threshold_exceeded", 3), makeAlert("ALERT_HIGH", "resolved", 4)} {
			r := runScript(t, v.name, encodeAlert(t, a), v.env(f.URL))
			if r.Code != 0 || !strings.HasPrefix(r.Stdout, v.name+": ") || strings.Count(strings.TrimSpace(r.Stdout), "\n") != 0 {
				t.Fatalf("want one line on stdout and exit 0:\n%s", r)
			}
		}
		exs := f.requests()
		if len(exs) < 2 {
			t.Fatalf("%d requests", len(exs))
		}
		if err := v.check(t, exs); err != nil {
			t.Fatalf("breaks the vendor's format: %v", err)
		}
	})
}

// TestNotifyRetries: 429 with Retry-After is waited out, 5xx is retried,
// persistent 5xx ends in a clear error after the bounded retries, a 400 is
// not retried, and a Retry-After beyond the time budget fails at once.
func TestNotifyRetries(t *testing.T) {
	t.Parallel()
	alert := encodeAlert(t, makeAlert("ALERT_MEDIUM", "threshold_exceeded", 2))
	scenarios := map[string]func(t *testing.T, v vendorCase, env func(*fakeVendor, ...string) map[string]string){
		"429 then success": func(t *testing.T, v vendorCase, env func(*fakeVendor, ...string) map[string]string) {
			f := newFake(t, v.ok(t), reply{Status: 429, Header: map[string]string{"Retry-After": "1"}, Body: "rate_limited"})
			r := runScript(t, v.name, alert, env(f))
			exs := f.requests()
			if r.Code != 0 || len(exs) < 2 {
				t.Fatalf("%d requests:\n%s", len(exs), r)
			}
			if gap := exs[1].At.Sub(exs[0].At); gap < 950*time.Millisecond {
				t.Errorf("retried %v after a 429 with Retry-After: 1", gap)
			}
			if err := v.check(t, exs); err != nil {
				t.Error(err)
			}
		},
		"5xx then success": func(t *testing.T, v vendorCase, env func(*fakeVendor, ...string) map[string]string) {
			f := newFake(t, v.ok(t), reply{Status: 503, Body: "busy"}, reply{Status: 500, Body: "<html><title>Server Error | Vendor</title></html>"})
			r := runScript(t, v.name, alert, env(f))
			if r.Code != 0 || len(f.requests()) < 3 {
				t.Fatalf("%d requests:\n%s", len(f.requests()), r)
			}
			if !strings.Contains(r.Stderr, "HTTP 503") || !strings.Contains(r.Stderr, "Server Error | Vendor") {
				t.Errorf("the retries are not reported:\n%s", r)
			}
		},
		"persistent 5xx": func(t *testing.T, v vendorCase, env func(*fakeVendor, ...string) map[string]string) {
			f := newFake(t, func(exchange) reply { return reply{Status: 502, Body: "bad gateway"} })
			r := runScript(t, v.name, alert, env(f, v.prefix+"_RETRIES", "2"))
			last := lastLine(r.Stderr)
			if r.Code == 0 || len(f.requests()) != 3 || !strings.HasPrefix(last, v.name+": ") ||
				!strings.Contains(last, "HTTP 502") || !strings.Contains(last, "gave up after 3 attempts") {
				t.Fatalf("want exit 1 after 3 attempts with one clear line, %d requests:\n%s", len(f.requests()), r)
			}
		},
		"400 not retried": func(t *testing.T, v vendorCase, env func(*fakeVendor, ...string) map[string]string) {
			f := newFake(t, v.ok(t), v.badRequest)
			r := runScript(t, v.name, alert, env(f))
			last := lastLine(r.Stderr)
			if r.Code == 0 || len(f.requests()) != 1 || !strings.Contains(last, "HTTP 400") || !strings.Contains(last, "not retried") {
				t.Fatalf("want exit 1 after 1 request, %d requests:\n%s", len(f.requests()), r)
			}
		},
		"Retry-After over budget": func(t *testing.T, v vendorCase, env func(*fakeVendor, ...string) map[string]string) {
			f := newFake(t, v.ok(t), reply{Status: 429, Header: map[string]string{"Retry-After": "3600"}})
			r := runScript(t, v.name, alert, env(f))
			if r.Code == 0 || len(f.requests()) != 1 || r.Elapsed > 10*time.Second ||
				!strings.Contains(lastLine(r.Stderr), v.prefix+"_TIME_BUDGET") {
				t.Fatalf("want an immediate failure naming the budget, %d requests:\n%s", len(f.requests()), r)
			}
		},
	}
	byName := vendorsByName(t)
	concurrently(t, slices.Sorted(maps.Keys(byName)), func(t *testing.T, name string) {
		v := byName[name]
		env := func(f *fakeVendor, extra ...string) map[string]string {
			e := v.env(f.URL)
			e[v.prefix+"_RETRY_BASE"] = "0.05"
			for i := 0; i+1 < len(extra); i += 2 {
				e[extra[i]] = extra[i+1]
			}
			return e
		}
		concurrently(t, slices.Sorted(maps.Keys(scenarios)), func(t *testing.T, scenario string) {
			scenarios[scenario](t, v, env)
		})
	})
}

// TestNotifyHostileAlerts: an alert missing fields, with odd types or with
// huge strings still makes a valid (cut down) payload; an alert that is not
// an alert, or a missing secret, is a clear one-line error.
func TestNotifyHostileAlerts(t *testing.T) {
	t.Parallel()
	hostile := hostileAlerts()
	names := slices.Sorted(maps.Keys(hostile))
	byName := vendorsByName(t)
	concurrently(t, slices.Sorted(maps.Keys(byName)), func(t *testing.T, vendor string) {
		v := byName[vendor]
		for _, name := range names {
			f := newFake(t, v.ok(t))
			r := runScript(t, v.name, encodeAlert(t, hostile[name]), v.env(f.URL))
			if r.Code != 0 {
				t.Errorf("%s: %s", name, r)
				continue
			}
			if err := v.check(t, f.requests()); err != nil {
				t.Errorf("%s: breaks the vendor's format: %v", name, err)
			}
		}
		f := newFake(t, v.ok(t))
		for arg, want := range map[string]string{
			"{nope":         "bad alert: sys.argv[1] is not JSON",
			`{"events": 5}`: "bad alert: alert field events must be a list",
			`[1, 2]`:        "bad alert: sys.argv[1] must be a JSON object",
		} {
			r := runScript(t, v.name, arg, v.env(f.URL))
			if r.Code != 1 || strings.TrimSpace(r.Stderr) != lastLine(r.Stderr) || !strings.Contains(r.Stderr, v.name+": "+want) {
				t.Errorf("alert %s: want exit 1 and %q:\n%s", arg, want, r)
			}
		}
		for k := range v.env(f.URL) {
			if strings.HasSuffix(k, "_URL") && k != "SERVICENOW_INSTANCE_URL" && k != "PAGERDUTY_EVENTS_URL" || k == "PAGERDUTY_ROUTING_KEY" || k == "SERVICENOW_PASSWORD" {
				env := v.env(f.URL)
				delete(env, k)
				r := runScript(t, v.name, encodeAlert(t, makeAlert("ALERT_LOW", "threshold_exceeded", 1)), env)
				if r.Code != 1 || !strings.Contains(r.Stderr, strings.ToLower(k)) || !strings.Contains(r.Stderr, "env "+k) {
					t.Errorf("without %s: want exit 1 naming the secret key:\n%s", k, r)
				}
			}
		}
		if n := len(f.requests()); n != 0 {
			t.Errorf("%d requests sent for alerts that are not alerts or without a secret", n)
		}
	})
}

// TestSlackBlocks: the message reads as Slack's Block Kit models read it,
// says what happened, and carries the legacy sender overrides.
func TestSlackBlocks(t *testing.T) {
	t.Parallel()
	f := newFake(t, func(exchange) reply { return reply{Status: 200, Body: "ok"} })
	env := map[string]string{"SLACK_WEBHOOK_URL": f.URL + "/services/T/B/SECRET-x", "SLACK_USERNAME": "vigil-bot", "SLACK_CHANNEL": "#ops"}
	r := runScript(t, "slack", encodeAlert(t, makeAlert("ALERT_HIGH", "threshold_exceeded", 7)), env)
	if r.Code != 0 {
		t.Fatal(r)
	}
	ex := f.requests()[0]
	if ct := ex.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") || ex.Path != "/services/T/B/SECRET-x" {
		t.Errorf("POST %s with Content-Type %q", ex.Path, ct)
	}
	requireSlackValid(t, [][]byte{ex.Body})
	var msg struct {
		Text     string           `json:"text"`
		Username string           `json:"username"`
		Channel  string           `json:"channel"`
		Blocks   []map[string]any `json:"blocks"`
	}
	if err := json.Unmarshal(ex.Body, &msg); err != nil {
		t.Fatal(err)
	}
	if msg.Username != "vigil-bot" || msg.Channel != "#ops" || !strings.Contains(msg.Text, "HIGH alert web-down on web (7 × SERVER_DOWN)") {
		t.Errorf("message %s", clipped(ex.Body))
	}
	if !strings.Contains(string(ex.Body), "…and 2 more") {
		t.Errorf("events beyond 5 are not summarised: %s", clipped(ex.Body))
	}

	// The checker bites: a header over Slack's limit and a field Slack's
	// models do not know are both reported.
	var broken map[string]any
	_ = json.Unmarshal(ex.Body, &broken)
	blocks := broken["blocks"].([]any)
	blocks[0].(map[string]any)["text"].(map[string]any)["text"] = strings.Repeat("h", 151)
	blocks[1].(map[string]any)["colour"] = "red"
	faults := checkSlack(t, [][]byte{mustJSON(broken)})[0]
	if len(faults) != 2 || !strings.Contains(faults[0], "150") || !strings.Contains(faults[1], "blocks[1]") {
		t.Errorf("broken message: faults %q", faults)
	}
}

// TestTeamsCard: the card validates against the Adaptive Card 1.5 schema,
// the message matches Teams' published envelope, a connector's in-body 429
// is retried, and the checker rejects a broken card.
func TestTeamsCard(t *testing.T) {
	t.Parallel()
	f := newFake(t, func(exchange) reply { return reply{Status: 202} },
		reply{Status: 200, Body: "Microsoft Teams endpoint returned HTTP error 429 with ContextId MS-CV=abc"})
	env := map[string]string{"TEAMS_WEBHOOK_URL": f.URL + "/workflows/x?sig=SECRET-sig", "TEAMS_RETRY_BASE": "0.05"}
	r := runScript(t, "teams", encodeAlert(t, makeAlert("ALERT_HIGH", "threshold_exceeded", 12)), env)
	exs := f.requests()
	if r.Code != 0 || len(exs) != 2 {
		t.Fatalf("%d requests:\n%s", len(exs), r)
	}
	body := exs[1].Body
	if err := checkTeams(t, body); err != nil {
		t.Fatalf("%v\n%s", err, clipped(body))
	}
	for _, want := range []string{`"HIGH alert: web-down on web"`, `"attention"`, `"12 × SERVER_DOWN"`, "…and 2 more"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("card lacks %s: %s", want, clipped(body))
		}
	}
	var msg map[string]any
	_ = json.Unmarshal(body, &msg)
	card := msg["attachments"].([]any)[0].(map[string]any)["content"].(map[string]any)
	card["body"].([]any)[0].(map[string]any)["type"] = "TextBlok"
	if err := checkTeams(t, mustJSON(msg)); err == nil {
		t.Error("a card with an unknown element passes the schema")
	}
	card["body"].([]any)[0].(map[string]any)["type"] = "TextBlock"
	msg["summary"] = "x"
	if err := checkTeams(t, mustJSON(msg)); err == nil {
		t.Error("a message with a field the envelope lacks passes")
	}
}

// TestPagerDutyTriggerResolve: trigger and resolve of one alert carry the
// same dedup_key, severity follows the level, both validate against the
// Events API v2 schema, and the checker rejects broken events.
func TestPagerDutyTriggerResolve(t *testing.T) {
	t.Parallel()
	pc := pagerduty(t)
	f := newFake(t, func(exchange) reply {
		return reply{Status: 202, Header: map[string]string{"Content-Type": "application/json"}, Body: pc.success}
	})
	env := map[string]string{"PAGERDUTY_ROUTING_KEY": "SECRET0pagerduty0routing0key0xx", "PAGERDUTY_EVENTS_URL": f.URL + "/v2/enqueue"}
	levels := map[string]string{"ALERT_HIGH": "critical", "ALERT_MEDIUM": "warning", "ALERT_LOW": "info", "ALERT_ODD": "error"}
	for _, level := range slices.Sorted(maps.Keys(levels)) {
		if r := runScript(t, "pagerduty", encodeAlert(t, makeAlert(level, "threshold_exceeded", 2)), env); r.Code != 0 {
			t.Fatal(r)
		}
	}
	// The resolve comes later, with more events: the name differs in its
	// event count only.
	r := runScript(t, "pagerduty", encodeAlert(t, makeAlert("ALERT_HIGH", "resolved", 5)), env)
	if r.Code != 0 {
		t.Fatal(r)
	}
	wantKey := strings.TrimSuffix(alertName("web-down", "pool-1", raisedAt, 2), "-2")
	order := slices.Sorted(maps.Keys(levels))
	exs := f.requests()
	if len(exs) != len(order)+1 {
		t.Fatalf("%d events, want %d", len(exs), len(order)+1)
	}
	for i, ex := range exs {
		if err := checkPagerDuty(t, ex.Body); err != nil {
			t.Errorf("event %d: %v\n%s", i, err, clipped(ex.Body))
		}
		var ev struct {
			RoutingKey  string `json:"routing_key"`
			DedupKey    string `json:"dedup_key"`
			EventAction string `json:"event_action"`
			Payload     *struct {
				Severity string `json:"severity"`
				Source   string `json:"source"`
			} `json:"payload"`
		}
		if err := json.Unmarshal(ex.Body, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.DedupKey != wantKey || ev.RoutingKey != env["PAGERDUTY_ROUTING_KEY"] {
			t.Errorf("event %d: dedup_key %q routing_key %q, want dedup_key %q", i, ev.DedupKey, ev.RoutingKey, wantKey)
		}
		switch {
		case i < len(order):
			if ev.EventAction != "trigger" || ev.Payload == nil || ev.Payload.Severity != levels[order[i]] || ev.Payload.Source != "web" {
				t.Errorf("%s: %s", order[i], ex.Body)
			}
		case ev.EventAction != "resolve" || ev.Payload != nil:
			t.Errorf("resolved alert: %s", ex.Body)
		}
	}

	// The checker bites.
	for name, body := range map[string]string{
		"bad severity":  `{"routing_key":"k","event_action":"trigger","payload":{"summary":"s","source":"x","severity":"fatal"}}`,
		"no source":     `{"routing_key":"k","event_action":"trigger","payload":{"summary":"s","severity":"info"}}`,
		"bad action":    `{"routing_key":"k","event_action":"close","dedup_key":"d"}`,
		"long summary":  `{"routing_key":"k","event_action":"trigger","payload":{"summary":"` + strings.Repeat("s", pc.summaryMax+1) + `","source":"x","severity":"info"}}`,
		"bad timestamp": `{"routing_key":"k","event_action":"trigger","payload":{"summary":"s","source":"x","severity":"info","timestamp":"yesterday"}}`,
	} {
		if err := checkPagerDuty(t, []byte(body)); err == nil {
			t.Errorf("%s passes", name)
		}
	}
}

// TestServiceNowIncidentLifecycle: a raised alert creates an incident, a
// later delivery of the same alert updates that incident, the resolve sets
// it to Resolved with a close code and notes, a second resolve changes
// nothing, and the next alert on the object opens a new incident.
func TestServiceNowIncidentLifecycle(t *testing.T) {
	t.Parallel()
	sn := newFakeServiceNow(t, "vigil.integration", "SECRET-pw")
	f := newFake(t, sn.serve)
	env := map[string]string{
		"SERVICENOW_INSTANCE_URL": f.URL + "/", "SERVICENOW_USER": "vigil.integration", "SERVICENOW_PASSWORD": "SECRET-pw",
		"SERVICENOW_ASSIGNMENT_GROUP": "287ebd7da9fe198100f92cc8d1d2154e",
	}
	steps := []struct {
		alert map[string]any
		out   string
	}{
		{makeAlert("ALERT_HIGH", "threshold_exceeded", 1), "servicenow: created INC0010001"},
		{makeAlert("ALERT_HIGH", "threshold_exceeded", 4), "servicenow: updated INC0010001"},
		{makeAlert("ALERT_HIGH", "resolved", 4), "servicenow: resolved INC0010001"},
		{makeAlert("ALERT_HIGH", "resolved", 4), "servicenow: INC0010001 is already resolved"},
	}
	next := makeAlert("ALERT_LOW", "threshold_exceeded", 1)
	next["name"] = alertName("web-down", "pool-1", raisedAt.Add(time.Hour), 1)
	steps = append(steps, struct {
		alert map[string]any
		out   string
	}{next, "servicenow: created INC0010002"})
	for i, s := range steps {
		r := runScript(t, "servicenow", encodeAlert(t, s.alert), env)
		if r.Code != 0 || !strings.HasPrefix(r.Stdout, s.out) {
			t.Fatalf("step %d: want %q:\n%s", i, s.out, r)
		}
	}
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if len(sn.incidents) != 2 {
		t.Fatalf("%d incidents, want 2", len(sn.incidents))
	}
	first := sn.incidents[0]
	wantCID := strings.TrimSuffix(alertName("web-down", "pool-1", raisedAt, 1), "-1")
	if first["correlation_id"] != wantCID || first["state"] != servicenow(t).resolved || first["close_code"] != "Resolved by caller" ||
		!strings.Contains(first["close_notes"].(string), "resolved") || first["urgency"] != "1" || first["impact"] != "1" ||
		first["assignment_group"] != "287ebd7da9fe198100f92cc8d1d2154e" || first["correlation_display"] != "vigil" {
		t.Errorf("first incident: %v", pick(first, "correlation_id,state,close_code,close_notes,urgency,impact,assignment_group,correlation_display"))
	}
	if notes := asList(first["notes"]); len(notes) != 1 || !strings.Contains(notes[0].(string), "4 × SERVER_DOWN") {
		t.Errorf("work notes %v", notes)
	}
	if sn.incidents[1]["correlation_id"] == wantCID || sn.incidents[1]["urgency"] != "3" {
		t.Errorf("second incident: %v", pick(sn.incidents[1], "correlation_id,urgency"))
	}

	// The checker bites.
	sc := servicenow(t)
	for name, body := range map[string]string{
		"unknown field":    `{"shortdescription":"x"}`,
		"number value":     `{"urgency":1}`,
		"long short":       `{"short_description":"` + strings.Repeat("s", sc.limits["short_description"]+1) + `"}`,
		"resolved bare":    `{"state":"` + sc.resolved + `"}`,
		"long correlation": `{"correlation_id":"` + strings.Repeat("c", sc.limits["correlation_id"]+1) + `"}`,
	} {
		if err := checkServiceNowWrite(t, []byte(body)); err == nil {
			t.Errorf("%s passes", name)
		}
	}
}

// TestServiceNowRateLimitReset: a 429 without Retry-After is waited out
// until its X-RateLimit-Reset, and a retried create looks the incident up
// first, so a create that went through is not repeated.
func TestServiceNowRateLimitReset(t *testing.T) {
	t.Parallel()
	sc := servicenow(t)
	sn := newFakeServiceNow(t, "u", "SECRET-pw")
	var lost atomic.Bool
	reset := time.Now().Add(2 * time.Second).Unix()
	limited := reply{Status: 429, Header: map[string]string{"X-RateLimit-Reset": strconv.FormatInt(reset, 10), "X-RateLimit-Limit": "100"}, Body: sc.limited}
	f := newFake(t, func(ex exchange) reply {
		rep := sn.serve(ex)
		if ex.Method == "POST" && lost.CompareAndSwap(false, true) {
			return reply{Status: 504, Body: "gateway timeout"} // the incident is created, the answer lost
		}
		return rep
	}, limited)
	env := map[string]string{"SERVICENOW_INSTANCE_URL": f.URL, "SERVICENOW_USER": "u", "SERVICENOW_PASSWORD": "SECRET-pw", "SERVICENOW_RETRY_BASE": "0.05"}
	r := runScript(t, "servicenow", encodeAlert(t, makeAlert("ALERT_MEDIUM", "threshold_exceeded", 1)), env)
	if r.Code != 0 || !strings.Contains(r.Stderr, "Rate limit exceeded") {
		t.Fatal(r)
	}
	exs := f.requests()
	if exs[1].At.Unix() < reset {
		t.Errorf("retried at %v, before the rate limit's reset at %d", exs[1].At, reset)
	}
	var methods []string
	for _, ex := range exs {
		methods = append(methods, ex.Method)
	}
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if strings.Join(methods, " ") != "GET GET POST GET PATCH" || len(sn.incidents) != 1 {
		t.Errorf("requests %v, %d incidents; want the lost create found and updated, not repeated", methods, len(sn.incidents))
	}
}

// TestWebhookSignature: our verifier agrees with the Standard Webhooks test
// vectors, the script's signer gives the vectors' signature, and what the
// script sends verifies, with a webhook-id that is the same for every
// attempt and every run of one alert.
func TestWebhookSignature(t *testing.T) {
	t.Parallel()
	vec := webhookVectors(t)
	for _, v := range vec.Sign {
		sig, err := swSign(v.Secret, v.MsgID, v.Timestamp, []byte(v.Payload))
		if err != nil || sig != v.Signature {
			t.Fatalf("sign: %q %v, the vector says %q", sig, err, v.Signature)
		}
		if err := swVerify(v.Secret, v.MsgID, v.Timestamp, []byte(v.Payload), vec.Multiple); err != nil {
			t.Errorf("multiple signatures: %v", err)
		}
		for _, bad := range vec.Invalid {
			if swVerify(v.Secret, v.MsgID, v.Timestamp, []byte(v.Payload), bad) == nil {
				t.Errorf("invalid signature %q verifies", bad)
			}
		}
		// The script's own signer, on the vector.
		code := `import importlib.util, sys
spec = importlib.util.spec_from_file_location("webhook_script", sys.argv[1])
m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
print(m.sign(m.signing_key(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5].encode()))`
		cmd := exec.CommandContext(context.Background(), python, "-c", code, filepath.Join(here, "webhook", "script.py"),
			v.Secret, v.MsgID, strconv.FormatInt(v.Timestamp, 10), v.Payload)
		cmd.Env = []string{"PYTHONPATH=" + filepath.Join(here, "..", "contrib", "python"), "PYTHONDONTWRITEBYTECODE=1"}
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != v.Signature {
			t.Errorf("script.py sign: %s %v, the vector says %s", out, err, v.Signature)
		}
	}

	key := make([]byte, 32)
	_, _ = rand.Read(key)
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	f := newFake(t, func(exchange) reply { return reply{Status: 200} }, reply{Status: 503, Header: map[string]string{"Retry-After": "1"}})
	env := map[string]string{"WEBHOOK_URL": f.URL + "/in", "WEBHOOK_SECRET": secret}
	raised := makeAlert("ALERT_HIGH", "threshold_exceeded", 2)
	for range 2 { // two runs (two executions) of one alert
		if r := runScript(t, "webhook", encodeAlert(t, raised), env); r.Code != 0 {
			t.Fatal(r)
		}
	}
	if r := runScript(t, "webhook", encodeAlert(t, makeAlert("ALERT_HIGH", "resolved", 2)), env); r.Code != 0 {
		t.Fatal(r)
	}
	exs := f.requests()
	if len(exs) != 4 {
		t.Fatalf("%d requests, want 4 (a 503 retried, then two more runs)", len(exs))
	}
	for i, ex := range exs {
		if err := checkWebhook(ex, secret, vec.Tolerance); err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	ids := []string{exs[0].Header.Get("webhook-id"), exs[1].Header.Get("webhook-id"), exs[2].Header.Get("webhook-id"), exs[3].Header.Get("webhook-id")}
	if ids[0] != ids[1] || ids[1] != ids[2] || ids[3] == ids[0] {
		t.Errorf("webhook-ids %v: want the same for the retry and the second run, another for the resolve", ids)
	}
	var doc struct {
		Type string `json:"type"`
		Data struct {
			Alert map[string]any `json:"alert"`
			Key   string         `json:"key"`
		} `json:"data"`
	}
	_ = json.Unmarshal(exs[2].Body, &doc)
	if doc.Type != "vigil.alert.raised" || doc.Data.Alert["name"] != raised["name"] ||
		doc.Data.Key != strings.TrimSuffix(raised["name"].(string), "-2") {
		t.Errorf("document %s", clipped(exs[2].Body))
	}
	// Tampering is caught.
	tampered := exs[2]
	tampered.Body = bytes.Replace(tampered.Body, []byte("ALERT_HIGH"), []byte("ALERT_LOW_"), 1)
	if checkWebhook(tampered, secret, vec.Tolerance) == nil {
		t.Error("a tampered body verifies")
	}
}

// TestWebhookUnsignedAndGone: without a secret nothing is signed; a
// redirect is not followed and a 410 is not retried.
func TestWebhookUnsignedAndGone(t *testing.T) {
	t.Parallel()
	alert := encodeAlert(t, makeAlert("ALERT_LOW", "threshold_exceeded", 1))
	f := newFake(t, func(exchange) reply { return reply{Status: 200} })
	if r := runScript(t, "webhook", alert, map[string]string{"WEBHOOK_URL": f.URL}); r.Code != 0 || !strings.Contains(r.Stdout, "unsigned") {
		t.Fatal(r)
	}
	if err := checkWebhook(f.requests()[0], "", webhookVectors(t).Tolerance); err != nil {
		t.Error(err)
	}
	for _, rep := range []reply{{Status: 410, Body: "gone"}, {Status: 302, Header: map[string]string{"Location": f.URL + "/elsewhere"}}} {
		g := newFake(t, func(exchange) reply { return reply{Status: 200} }, rep)
		r := runScript(t, "webhook", alert, map[string]string{"WEBHOOK_URL": g.URL + "/in", "WEBHOOK_SECRET": "whsec_" + base64.StdEncoding.EncodeToString([]byte("SECRET-key-of-24-bytes!!"))})
		if r.Code != 1 || len(g.requests()) != 1 || !strings.Contains(r.Stderr, fmt.Sprintf("HTTP %d", rep.Status)) {
			t.Errorf("%d: want one request and exit 1, %d requests:\n%s", rep.Status, len(g.requests()), r)
		}
	}
	r := runScript(t, "webhook", alert, map[string]string{"WEBHOOK_URL": f.URL, "WEBHOOK_SECRET": "whsec_not base64!"})
	if r.Code != 1 || !strings.Contains(r.Stderr, "webhook_secret is not a Standard Webhooks secret") {
		t.Errorf("bad secret: %s", r)
	}

	// A document over WEBHOOK_MAX_BYTES has its alert cut down to fit.
	g := newFake(t, func(exchange) reply { return reply{Status: 200} })
	r = runScript(t, "webhook", encodeAlert(t, hostileAlerts()["huge"]), map[string]string{"WEBHOOK_URL": g.URL, "WEBHOOK_MAX_BYTES": "60000"})
	if r.Code != 0 {
		t.Fatal(r)
	}
	ex := g.requests()[0]
	var doc struct {
		Data struct {
			Alert struct {
				Truncated bool  `json:"truncated"`
				Events    []any `json:"events"`
			} `json:"alert"`
		} `json:"data"`
	}
	if err := json.Unmarshal(ex.Body, &doc); err != nil || len(ex.Body) > 60000 || !doc.Data.Alert.Truncated || len(doc.Data.Alert.Events) != 30 {
		t.Errorf("%d bytes, %v, truncated %v, %d events", len(ex.Body), err, doc.Data.Alert.Truncated, len(doc.Data.Alert.Events))
	}
	if err := checkWebhook(ex, "", webhookVectors(t).Tolerance); err != nil {
		t.Error(err)
	}
}
