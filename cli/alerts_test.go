package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/actions"
	"github.com/vigilhq/vigil/client"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/controller"
	"github.com/vigilhq/vigil/events"
)

// tokenStore is the smallest controller.ObjectStore the real API starts
// with: one admin token ("vgl_admin"), nothing else, read-only.
type tokenStore struct{ admin *config.Object }

var _ controller.ObjectStore = (*tokenStore)(nil)

func newTokenStore() *tokenStore {
	return &tokenStore{admin: controller.TokenObject("admin", "admin", controller.HashToken("vgl_admin"), "", time.Time{}, "")}
}

var errReadOnly = errors.New("the test's store is read-only")

func (s *tokenStore) Registry() *config.Registry { return config.Kinds }

func (s *tokenStore) Get(_ context.Context, kind, name string) (*config.Object, error) {
	if kind == controller.TokenKind && name == s.admin.Name {
		return s.admin, nil
	}
	return nil, &config.NotFoundError{Object: kind + "/" + name}
}

func (s *tokenStore) List(_ context.Context, kind string) ([]*config.Object, error) {
	if kind == controller.TokenKind {
		return []*config.Object{s.admin}, nil
	}
	return nil, nil
}

func (s *tokenStore) Apply(context.Context, []*config.Object, config.ApplyOptions) ([]config.Result, error) {
	return nil, errReadOnly
}

func (s *tokenStore) Delete(context.Context, []config.Ref, config.DeleteOptions) ([]config.Result, error) {
	return nil, errReadOnly
}

func (s *tokenStore) Redact(obj *config.Object) *config.Object { return obj }

func (s *tokenStore) Watch(ctx context.Context, kind string, fn func(config.Change)) error {
	if kind == controller.TokenKind {
		fn(config.Change{Op: config.OpPut, Object: s.admin, Revision: 1})
	}
	fn(config.Change{Op: config.OpSynced})
	<-ctx.Done()
	return nil
}

// noBus is a controller.EventBus for tests that use no event route.
type noBus struct{}

var errNoBus = errors.New("the test has no event bus")

func (noBus) Publish(context.Context, *events.Event) (events.PublishResult, error) {
	return events.PublishResult{}, errNoBus
}

func (noBus) PublishBatch(context.Context, []*events.Event) ([]events.PublishResult, error) {
	return nil, errNoBus
}

func (noBus) List(context.Context, events.Filter) ([]events.Stored, uint64, error) {
	return nil, 0, errNoBus
}

func (noBus) Follow(context.Context, events.Filter, func(events.Stored) error) error { return errNoBus }

func (noBus) ListRejected(context.Context, uint64, int) ([]events.Rejected, uint64, error) {
	return nil, 0, errNoBus
}

func (noBus) Ready() error { return nil }

// fixedAlerts stands in for the rules engine behind the real API: fixed
// alerts, test results and dead letters. It exists only to check what the
// commands print, and which flags reach the API; the engine itself (what
// matches, what an alert holds, how dead letters page) is tested in the
// actions package, and the routes in controller.
type fixedAlerts struct {
	mu        sync.Mutex
	alerts    []actions.Alert // newest first
	results   []actions.TestResult
	dead      []actions.DeadLetter // by seq
	filters   []actions.AlertFilter
	tested    []string // event ids
	deadPages []string // "from/limit"
}

var _ controller.Alerts = (*fixedAlerts)(nil)

func (f *fixedAlerts) Alerts(_ context.Context, flt actions.AlertFilter) ([]actions.Alert, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filters = append(f.filters, flt)
	var out []actions.Alert
	for _, a := range f.alerts {
		if (flt.Config == "" || flt.Config == a.Config) && (flt.State == "" || flt.State == a.State) && len(out) < flt.Limit {
			out = append(out, a)
		}
	}
	return out, nil
}

func (f *fixedAlerts) Alert(_ context.Context, id string) (*actions.Alert, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.alerts {
		if f.alerts[i].ID == id {
			a := f.alerts[i]
			return &a, nil
		}
	}
	return nil, fmt.Errorf("%s: %w", id, actions.ErrNoAlert)
}

func (f *fixedAlerts) Dismiss(ctx context.Context, id string) (*actions.Alert, error) {
	if _, err := f.Alert(ctx, id); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.alerts {
		if f.alerts[i].ID == id {
			f.alerts[i].State = actions.StateDismissed
			a := f.alerts[i]
			return &a, nil
		}
	}
	return nil, fmt.Errorf("%s: %w", id, actions.ErrNoAlert)
}

// Test answers the fixed results for SERVER_DOWN, and nothing otherwise.
func (f *fixedAlerts) Test(_ context.Context, ev *events.Event) ([]actions.TestResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tested = append(f.tested, ev.Data.EventID)
	if ev.Data.EventID != "SERVER_DOWN" {
		return nil, nil
	}
	return f.results, nil
}

func (f *fixedAlerts) DeadLetters(_ context.Context, from uint64, limit int) ([]actions.DeadLetter, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deadPages = append(f.deadPages, fmt.Sprintf("%d/%d", from, limit))
	var out []actions.DeadLetter
	for _, dl := range f.dead {
		if dl.Seq < from {
			continue
		}
		if len(out) == limit {
			return out, dl.Seq, nil
		}
		out = append(out, dl)
	}
	return out, 0, nil
}

func (f *fixedAlerts) Replay(_ context.Context, seq uint64) (*actions.DeadLetter, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, dl := range f.dead {
		if dl.Seq == seq {
			f.dead = slices.Delete(f.dead, i, i+1)
			return &dl, nil
		}
	}
	return nil, fmt.Errorf("%d: %w", seq, actions.ErrNoDeadLetter)
}

// newFixedAlerts returns two alerts, the test results of a SERVER_DOWN,
// and three dead letters (seq 3, 5 and 8).
func newFixedAlerts() *fixedAlerts {
	web := actions.Alert{
		ID: "alert-2", Config: "web-down", Key: "pool/web", State: actions.StateOn, Level: actions.LevelHigh,
		ObjType: "pool", ObjName: "web", ObjUUID: "pool-1", Raised: fakeTime.Add(time.Minute), Acted: fakeTime.Add(2 * time.Minute),
		ThrottleCount: 2,
		Events: []events.Record{
			{EventID: "SERVER_DOWN", ObjType: "pool", ObjName: "web", ReportTimestamp: fakeTime.Unix() + 50},
			{EventID: "SERVER_DOWN", ObjType: "pool", ObjName: "web", ReportTimestamp: fakeTime.Unix() + 60},
			{EventID: "SERVER_DOWN", ObjType: "pool", ObjName: "web", ReportTimestamp: fakeTime.Unix() + 70},
		},
		Summary: "pool web: 3 x SERVER_DOWN within 60s, servers 10.0.0.1:80, 10.0.0.2:80 and 10.0.0.3:80 are down",
		Actions: []actions.ActionOutcome{
			{Key: "act-1", Kind: "webhook", Target: "webhooks[0]", Status: actions.OutcomeDelivered, Tries: 1, At: fakeTime.Add(time.Minute)},
			{Key: "act-2", Kind: "controlscript", Target: "controlscript", Status: actions.OutcomeFailed, Tries: 1, Error: "exit 3", At: fakeTime.Add(time.Minute), Execution: "exec-7"},
		},
		ActionScriptOutput: "restarting web\nfailed",
	}
	db := actions.Alert{
		ID: "alert-1", Config: "db-down", Key: "db", State: actions.StateResolved, Level: actions.LevelLow,
		ObjName: "db", Raised: fakeTime, Events: []events.Record{{EventID: "POOL_DOWN", ObjName: "db", ReportTimestamp: fakeTime.Unix()}},
		Summary: "db down",
	}
	dead := func(seq uint64, kind string, index int, errText string) actions.DeadLetter {
		return actions.DeadLetter{
			Seq: seq, Error: errText, Tries: 5, At: fakeTime.Add(time.Duration(seq) * time.Minute),
			Request: actions.ActionRequest{
				Key: fmt.Sprintf("act-%d", seq), Kind: kind, Index: index, Group: "oncall", Config: "web-down",
				GroupKey: "pool/web", Created: fakeTime, Notice: actions.Notice{ID: "alert-2"},
			},
		}
	}
	return &fixedAlerts{
		alerts: []actions.Alert{web, db},
		results: []actions.TestResult{
			{
				Config: "web-down", Matched: true, Key: "pool/web", Outcome: "act",
				Actions: []actions.ActionOutcome{{Target: "webhooks[0]"}, {Target: "syslog[1]"}},
			},
			{Config: "db-down", Reason: "event_id is SERVER_DOWN, not POOL_DOWN"},
		},
		dead: []actions.DeadLetter{
			dead(3, "webhook", 1, "POST https://hooks.example.com/oncall: HTTP 503 Service Unavailable after 5 tries, giving up"),
			dead(5, "syslog", 0, "dial tcp 10.0.0.9:514: connection refused"),
			dead(8, "slack", 0, "HTTP 404"),
		},
	}
}

// startAlertsAPI starts the real API with alerts as its rules engine and
// points the command line at it with the admin token.
func startAlertsAPI(t *testing.T, alerts controller.Alerts) {
	t.Helper()
	api, err := controller.New(controller.Options{
		Store:  newTokenStore(),
		Bus:    noBus{},
		Alerts: alerts,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := api.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Stop(context.Background()) })
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	isolate(t)
	t.Setenv("VIGIL_ADDR", srv.URL)
	t.Setenv("VIGIL_TOKEN", "vgl_admin")
}

// fields normalises the columns of each line of a table.
func fields(out string) []string {
	var rows []string
	for line := range strings.SplitSeq(strings.TrimRight(out, "\n"), "\n") {
		rows = append(rows, strings.Join(strings.Fields(line), " "))
	}
	return rows
}

func wantRows(t *testing.T, what, out string, want ...string) {
	t.Helper()
	if got := fields(out); !slices.Equal(got, want) {
		t.Errorf("%s:\n%s\nwant\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestAlertsList(t *testing.T) {
	f := newFixedAlerts()
	startAlertsAPI(t, f)

	r := vigil(t, "", "alerts", "list")
	wantCode(t, r, 0)
	wantRows(t, "alerts list", r.stdout,
		"ID CONFIG STATE LEVEL OBJECT RAISED THROTTLED EVENTS SUMMARY",
		"alert-2 web-down ON high pool/web 2026-01-02T03:05:05Z 2 3 pool web: 3 x SERVER_DOWN within 60s, servers 10.0.0.1:80...",
		"alert-1 db-down RESOLVED low db 2026-01-02T03:04:05Z 0 1 db down",
	)

	r = vigil(t, "", "alerts", "list", "--config", "web-down", "--state", "on", "--limit", "5", "-o", "json")
	wantCode(t, r, 0)
	var list struct {
		Items []client.Alert `json:"items"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Items) != 1 || list.Items[0].ID != "alert-2" ||
		len(list.Items[0].Actions) != 2 || list.Items[0].Summary != f.alerts[0].Summary {
		t.Errorf("list -o json: %v\n%s", err, r.stdout)
	}

	r = vigil(t, "", "alerts", "list", "--state", "Dismissed", "-o", "json")
	wantCode(t, r, 0)
	if strings.Join(strings.Fields(r.stdout), "") != `{"items":[]}` {
		t.Errorf("empty list -o json: %q", r.stdout)
	}
	r = vigil(t, "", "alerts", "list", "-o", "yaml")
	wantCode(t, r, 0)
	if !strings.HasPrefix(r.stdout, "items:\n") || !strings.Contains(r.stdout, "id: alert-2") {
		t.Errorf("list -o yaml:\n%s", r.stdout)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	want := []actions.AlertFilter{
		{Limit: controller.DefaultAlertLimit},
		{Config: "web-down", State: "ON", Limit: 5},
		{State: "DISMISSED", Limit: controller.DefaultAlertLimit},
		{Limit: controller.DefaultAlertLimit},
	}
	if !slices.Equal(f.filters, want) {
		t.Errorf("filters %+v, want %+v", f.filters, want)
	}
}

func TestAlertsShow(t *testing.T) {
	startAlertsAPI(t, newFixedAlerts())

	r := vigil(t, "", "alerts", "show", "alert-2")
	wantCode(t, r, 0)
	want := `ID:        alert-2
Config:    web-down
Key:       pool/web
State:     ON
Level:     high
Object:    pool/web (pool-1)
Raised:    2026-01-02T03:05:05Z
Acted:     2026-01-02T03:06:05Z
Throttled: 2
Summary:   pool web: 3 x SERVER_DOWN within 60s, servers 10.0.0.1:80, 10.0.0.2:80 and 10.0.0.3:80 are down

Events (3):
  TIME                  EVENT_ID     OBJECT
  2026-01-02T03:04:55Z  SERVER_DOWN  pool/web
  2026-01-02T03:05:05Z  SERVER_DOWN  pool/web
  2026-01-02T03:05:15Z  SERVER_DOWN  pool/web

Actions (2):
  TARGET         STATUS     TRIES  AT                    EXECUTION  ERROR
  webhooks[0]    delivered  1      2026-01-02T03:05:05Z  -          -
  controlscript  failed     1      2026-01-02T03:05:05Z  exec-7     exit 3

Action script output:
restarting web
failed
`
	if r.stdout != want {
		t.Errorf("show:\n%s\nwant\n%s", r.stdout, want)
	}

	r = vigil(t, "", "alerts", "show", "alert-1")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "Object:    db\n") || !strings.Contains(r.stdout, "\nActions (0):\n") ||
		strings.Contains(r.stdout, "Action script output") {
		t.Errorf("show of an alert without actions:\n%s", r.stdout)
	}

	r = vigil(t, "", "alerts", "show", "alert-2", "-o", "json")
	wantCode(t, r, 0)
	var a client.Alert
	if err := json.Unmarshal([]byte(r.stdout), &a); err != nil || a.ID != "alert-2" || len(a.Events) != 3 || a.Actions[1].Execution != "exec-7" {
		t.Errorf("show -o json: %v\n%s", err, r.stdout)
	}
	r = vigil(t, "", "alerts", "show", "alert-2", "-o", "yaml")
	wantCode(t, r, 0)
	for _, want := range []string{"\nid: alert-2\n", "\n    execution: exec-7\n", "\naction_script_output: |-\n"} {
		if !strings.Contains("\n"+r.stdout, want) {
			t.Errorf("show -o yaml has no %q:\n%s", want, r.stdout)
		}
	}

	r = vigil(t, "", "alerts", "show", "alert-9")
	wantCode(t, r, 1)
	if r.stderr != "vigil: Alert/alert-9: not found (it may have expired) (not_found)\n" {
		t.Errorf("show of an unknown alert: %q", r.stderr)
	}
}

func TestAlertsDismiss(t *testing.T) {
	f := newFixedAlerts()
	startAlertsAPI(t, f)

	r := vigil(t, "", "alerts", "dismiss", "alert-2")
	wantCode(t, r, 0)
	if r.stdout != "alert alert-2 dismissed\n" || r.stderr != "" {
		t.Errorf("dismiss: %q %q", r.stdout, r.stderr)
	}
	f.mu.Lock()
	state := f.alerts[0].State
	f.mu.Unlock()
	if state != actions.StateDismissed {
		t.Errorf("alert-2 is %s", state)
	}

	// An unknown id is reported; the others are still dismissed.
	r = vigil(t, "", "alerts", "dismiss", "nope", "alert-1")
	wantCode(t, r, 1)
	if r.stdout != "alert alert-1 dismissed\n" || r.stderr != "vigil: Alert/nope: not found (it may have expired) (not_found)\n" {
		t.Errorf("dismiss of an unknown alert: %q %q", r.stdout, r.stderr)
	}
}

func TestAlertsTest(t *testing.T) {
	f := newFixedAlerts()
	startAlertsAPI(t, f)
	dir := t.TempDir()
	event := writeFile(t, filepath.Join(dir, "event.json"), `{
  "event_id": "SERVER_DOWN",
  "obj_type": "pool",
  "obj_name": "web"
}
`)
	wantTable := []string{
		"CONFIG MATCHED OUTCOME/REASON KEY ACTIONS",
		"web-down yes act pool/web webhooks[0],syslog[1]",
		"db-down no event_id is SERVER_DOWN, not POOL_DOWN - -",
	}
	r := vigil(t, "", "alerts", "test", "-f", event)
	wantCode(t, r, 0)
	wantRows(t, "test -f FILE", r.stdout, wantTable...)

	// A CloudEvent on stdin.
	ce := `{"specversion": "1.0", "id": "e-1", "source": "test", "type": "SERVER_DOWN",
	        "data": {"event_id": "SERVER_DOWN", "obj_type": "pool", "obj_name": "web"}}`
	r = vigil(t, ce, "alerts", "test", "-f", "-")
	wantCode(t, r, 0)
	wantRows(t, "test -f -", r.stdout, wantTable...)

	r = vigil(t, "", "alerts", "test", "-f", event, "-o", "json")
	wantCode(t, r, 0)
	var ans struct {
		Results []client.TestResult `json:"results"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &ans); err != nil || len(ans.Results) != 2 || ans.Results[0].Outcome != "act" ||
		ans.Results[1].Reason == "" {
		t.Errorf("test -o json: %v\n%s", err, r.stdout)
	}

	// Nothing matches: still exit 0.
	r = vigil(t, `{"event_id": "CONFIG_CREATE", "obj_type": "pool", "obj_name": "web"}`, "alerts", "test", "-f", "-")
	wantCode(t, r, 0)
	if r.stdout != "" || r.stderr != "no AlertConfig matches the event\n" {
		t.Errorf("no match: %q %q", r.stdout, r.stderr)
	}
	r = vigil(t, `{"event_id": "CONFIG_CREATE", "obj_type": "pool", "obj_name": "web"}`, "alerts", "test", "-f", "-", "-o", "json")
	wantCode(t, r, 0)
	if strings.Join(strings.Fields(r.stdout), "") != `{"results":[]}` {
		t.Errorf("no match -o json: %q", r.stdout)
	}

	f.mu.Lock()
	tested := slices.Clone(f.tested)
	f.mu.Unlock()
	if want := []string{"SERVER_DOWN", "SERVER_DOWN", "SERVER_DOWN", "CONFIG_CREATE", "CONFIG_CREATE"}; !slices.Equal(tested, want) {
		t.Errorf("tested %q, want %q", tested, want)
	}

	// Malformed input never reaches the server.
	bad := writeFile(t, filepath.Join(dir, "bad.json"), "{\n  \"event_id\": \"SERVER_DOWN\",\n}\n")
	yml := writeFile(t, filepath.Join(dir, "event.yaml"), "event_id: SERVER_DOWN\nobj_type: pool\n")
	for _, tt := range []struct {
		args  []string
		stdin string
		code  int
		want  string
	}{
		{[]string{"-f", bad}, "", 1, "vigil: " + bad + ":3:1: invalid JSON: invalid character '}' looking for beginning of object key string\n"},
		{[]string{"-f", yml}, "", 1, "vigil: " + yml + ":1:1: invalid JSON: invalid character 'e' looking for beginning of value (the event must be JSON; YAML is not read)\n"},
		{[]string{"-f", "-"}, "[1, 2]", 1, "vigil: stdin: the event must be a JSON object: a CloudEvent or a record such as {\"event_id\": \"SERVER_DOWN\", \"obj_type\": \"pool\", \"obj_name\": \"web\"}\n"},
		{[]string{"-f", "-"}, " \n", 1, "vigil: stdin is empty: want an event, a JSON object\n"},
		{[]string{"-f", filepath.Join(dir, "missing.json")}, "", 1, "vigil: -f: open " + filepath.Join(dir, "missing.json") + ": no such file or directory\n"},
		{nil, "", 2, "vigil: no event: give -f FILE or -f - (see 'vigil alerts test --help')\n"},
	} {
		r := vigil(t, tt.stdin, append([]string{"alerts", "test"}, tt.args...)...)
		wantCode(t, r, tt.code)
		if r.stderr != tt.want {
			t.Errorf("test %q:\n got %q\nwant %q", tt.args, r.stderr, tt.want)
		}
	}
	f.mu.Lock()
	n := len(f.tested)
	f.mu.Unlock()
	if n != len(tested) {
		t.Errorf("malformed events reached the server: %d tests", n-len(tested))
	}

	// An event the API refuses: its error, as it gives it.
	r = vigil(t, `{"obj_type": "pool", "obj_name": "web"}`, "alerts", "test", "-f", "-")
	wantCode(t, r, 1)
	if !strings.HasPrefix(r.stderr, "vigil: ") || !strings.HasSuffix(r.stderr, "(invalid_event)\n") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("an invalid event: %q", r.stderr)
	}
}

func TestDeadLettersList(t *testing.T) {
	f := newFixedAlerts()
	startAlertsAPI(t, f)
	header := "SEQ KIND TARGET CONFIG ALERT TRIES ERROR AT"
	row3 := "3 webhook webhooks[1] web-down alert-2 5 POST https://hooks.example.com/oncall: HTTP 503 Service U... 2026-01-02T03:07:05Z"
	row5 := "5 syslog syslog[0] web-down alert-2 5 dial tcp 10.0.0.9:514: connection refused 2026-01-02T03:09:05Z"
	row8 := "8 slack slack web-down alert-2 5 HTTP 404 2026-01-02T03:12:05Z"

	// One page, and where to go on.
	r := vigil(t, "", "deadletters", "list", "--limit", "2")
	wantCode(t, r, 0)
	wantRows(t, "one page", r.stdout, header, row3, row5)
	if r.stderr != "next cursor: 8\n" {
		t.Errorf("stderr %q", r.stderr)
	}
	r = vigil(t, "", "deadletters", "list", "--limit", "2", "--cursor", "8")
	wantCode(t, r, 0)
	wantRows(t, "the next page", r.stdout, header, row8)
	if r.stderr != "" {
		t.Errorf("stderr %q", r.stderr)
	}

	// --all follows the cursor across both pages.
	r = vigil(t, "", "deadletters", "list", "--limit", "2", "--all")
	wantCode(t, r, 0)
	wantRows(t, "--all", r.stdout, header, row3, row5, row8)
	if r.stderr != "" {
		t.Errorf("stderr %q", r.stderr)
	}
	r = vigil(t, "", "deadletters", "list", "--limit", "2", "--all", "-o", "json")
	wantCode(t, r, 0)
	var page struct {
		Items      []client.DeadLetter `json:"items"`
		NextCursor *string             `json:"next_cursor"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &page); err != nil || len(page.Items) != 3 || page.Items[2].Seq != 8 ||
		page.Items[0].Request.Notice.ID != "alert-2" || page.NextCursor != nil {
		t.Errorf("--all -o json: %v\n%s", err, r.stdout)
	}
	r = vigil(t, "", "deadletters", "list", "--limit", "1", "-o", "json")
	wantCode(t, r, 0)
	if err := json.Unmarshal([]byte(r.stdout), &page); err != nil || len(page.Items) != 1 || page.NextCursor == nil || *page.NextCursor != "5" {
		t.Errorf("one page -o json: %v\n%s", err, r.stdout)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	want := []string{"0/2", "8/2", "0/2", "8/2", "0/2", "8/2", "0/1"}
	if !slices.Equal(f.deadPages, want) {
		t.Errorf("pages asked %q, want %q", f.deadPages, want)
	}
}

func TestDeadLettersReplay(t *testing.T) {
	f := newFixedAlerts()
	startAlertsAPI(t, f)

	r := vigil(t, "", "deadletters", "replay", "5")
	wantCode(t, r, 0)
	if r.stdout != "dead letter 5 replayed (key act-5)\n" || r.stderr != "" {
		t.Errorf("replay: %q %q", r.stdout, r.stderr)
	}
	// Replayed already: reported, and the others are still replayed.
	r = vigil(t, "", "deadletters", "replay", "5", "8")
	wantCode(t, r, 1)
	if r.stdout != "dead letter 8 replayed (key act-8)\n" ||
		r.stderr != "vigil: DeadLetter/5: not found (replayed already, or past its retention) (not_found)\n" {
		t.Errorf("replay of a replayed one: %q %q", r.stdout, r.stderr)
	}
	r = vigil(t, "", "deadletters", "replay", "--all")
	wantCode(t, r, 0)
	if r.stdout != "dead letter 3 replayed (key act-3)\n" {
		t.Errorf("replay --all: %q %q", r.stdout, r.stderr)
	}
	r = vigil(t, "", "deadletters", "replay", "--all")
	wantCode(t, r, 0)
	if r.stdout != "" || r.stderr != "no dead letters\n" {
		t.Errorf("replay --all of none: %q %q", r.stdout, r.stderr)
	}
	r = vigil(t, "", "deadletters", "list")
	wantCode(t, r, 0)
	wantRows(t, "after the replays", r.stdout, "SEQ KIND TARGET CONFIG ALERT TRIES ERROR AT")
}

func TestAlertsWithoutRulesEngine(t *testing.T) {
	startAlertsAPI(t, nil)
	for _, args := range [][]string{{"alerts", "list"}, {"deadletters", "list", "--all"}, {"deadletters", "replay", "--all"}} {
		r := vigil(t, "", args...)
		wantCode(t, r, 1)
		if r.stderr != "vigil: the rules engine is not enabled (unavailable)\n" {
			t.Errorf("%q: stderr %q", args, r.stderr)
		}
	}
}

func TestAlertsUsageErrors(t *testing.T) {
	isolate(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"alerts", "bogus"}, `unknown command "bogus" for "vigil alerts"`},
		{[]string{"alerts", "list", "--state", "firing"}, "must be one of ON, THROTTLED, RESOLVED, DISMISSED"},
		{[]string{"alerts", "list", "--limit", "-1"}, "--limit: must not be negative"},
		{[]string{"alerts", "list", "x"}, `unexpected argument "x"`},
		{[]string{"alerts", "list", "-o", "wide"}, "must be one of table, json, yaml"},
		{[]string{"alerts", "show"}, "want 1 argument(s), ID; got 0"},
		{[]string{"alerts", "dismiss"}, "want at least one alert ID"},
		{[]string{"alerts", "test", "event.json"}, `unexpected argument "event.json"`},
		{[]string{"deadletters", "bogus"}, `unknown command "bogus" for "vigil deadletters"`},
		{[]string{"deadletters", "list", "--limit", "-2"}, "--limit: must not be negative"},
		{[]string{"deadletters", "replay"}, "want at least one SEQ, or --all"},
		{[]string{"deadletters", "replay", "3", "--all"}, "give SEQ... or --all, not both"},
		{[]string{"deadletters", "replay", "3", "x"}, `SEQ must be a dead letter's sequence number (see 'vigil deadletters list'), got "x"`},
		{[]string{"deadletters", "replay", "0"}, `got "0"`},
	}
	for _, tt := range tests {
		r := vigil(t, "", tt.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tt.args, r.code, r.stderr, tt.want)
		}
	}
}

func TestAlertsHelp(t *testing.T) {
	isolate(t)
	r := vigil(t, "", "--help")
	wantCode(t, r, 0)
	for _, want := range []string{"alerts", "deadletters"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("vigil --help does not list %s", want)
		}
	}
	r = vigil(t, "", "alerts", "test", "--help")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "JSON file (not YAML)") || !strings.Contains(r.stdout, "-f -") {
		t.Errorf("alerts test --help:\n%s", r.stdout)
	}
}
