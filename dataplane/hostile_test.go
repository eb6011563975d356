package dataplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil/dataplane/datascript"
	"github.com/vigilhq/vigil/dataplane/spec"
	"github.com/vigilhq/vigil/events"
)

// fakePublisher hands each published event to publish.
type fakePublisher struct {
	publish func(*events.Event)
}

func (f fakePublisher) Publish(_ context.Context, ev *events.Event) (events.PublishResult, error) {
	f.publish(ev)
	return events.PublishResult{}, nil
}

// eventLog keeps the events a proxy publishes.
type eventLog struct {
	mu  sync.Mutex
	evs []*events.Event
}

func (l *eventLog) publisher() fakePublisher {
	return fakePublisher{publish: func(ev *events.Event) {
		l.mu.Lock()
		l.evs = append(l.evs, ev)
		l.mu.Unlock()
	}}
}

// scriptErrors returns the datascript_error_details of the
// DATASCRIPT_ERROR events published for the virtual service vs.
func (l *eventLog) scriptErrors(t *testing.T, vs string) []map[string]string {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]string
	for _, ev := range l.evs {
		if ev.Type != "DATASCRIPT_ERROR" || ev.Data.ObjName != vs {
			continue
		}
		var d map[string]string
		if err := json.Unmarshal(ev.Data.EventDetails["datascript_error_details"], &d); err != nil {
			t.Fatalf("DATASCRIPT_ERROR details %s: %v", ev.Data.EventDetails["datascript_error_details"], err)
		}
		if ev.Data.ObjType != "virtualservice" || ev.Subject != "virtualservice/"+vs {
			t.Fatalf("DATASCRIPT_ERROR about %s %s (subject %q)", ev.Data.ObjType, ev.Data.ObjName, ev.Subject)
		}
		out = append(out, d)
	}
	return out
}

// newRigWith is newRig with more options (the store is the rig's).
func newRigWith(t *testing.T, opts Options, poolSpec, vsExtra string) *rig {
	t.Helper()
	st := newFakeStore()
	st.put(spec.KindPool, "web", poolSpec)
	st.put(spec.KindVirtualService, "vs", `{"listen": "127.0.0.1:0", "pool": "web"`+vsExtra+`}`)
	opts.Store = st
	p := New(opts)
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	waitFor(t, "the virtual service to listen", 5*time.Second, func() bool { return p.Addr("vs") != "" })
	return &rig{store: st, proxy: p}
}

// traffic sends GETs to url until stopped, counting answers of 200 and
// anything else.
type traffic struct {
	ok, bad atomic.Int64
	mu      sync.Mutex
	first   string // the first failure
	stop    chan struct{}
	done    chan struct{}
}

func startTraffic(url string) *traffic {
	tr := &traffic{stop: make(chan struct{}), done: make(chan struct{})}
	c := &http.Client{Timeout: 5 * time.Second}
	go func() {
		defer close(tr.done)
		for {
			select {
			case <-tr.stop:
				return
			default:
			}
			resp, err := c.Get(url)
			what := ""
			if err != nil {
				what = err.Error()
			} else {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					what = resp.Status
				}
			}
			if what == "" {
				tr.ok.Add(1)
				continue
			}
			tr.bad.Add(1)
			tr.mu.Lock()
			if tr.first == "" {
				tr.first = what
			}
			tr.mu.Unlock()
		}
	}()
	return tr
}

// end stops the traffic once it has had at least a few answers, and
// fails the test if any was not a 200.
func (tr *traffic) end(t *testing.T, name string) {
	t.Helper()
	waitFor(t, name+" traffic to get answers", 10*time.Second, func() bool { return tr.ok.Load()+tr.bad.Load() >= 3 })
	close(tr.stop)
	<-tr.done
	if n := tr.bad.Load(); n > 0 {
		t.Fatalf("%s traffic: %d of %d requests failed, first: %s", name, n, n+tr.ok.Load(), tr.first)
	}
}

// hostileCase is a DataScriptSet that misbehaves on requests for /evil
// and leaves the rest alone.
type hostileCase struct {
	name string
	// set's chunks; "/evil" requests trigger the misbehaviour.
	chunks []spec.DataScript
	// poolRefs of the set.
	poolRefs []string
	// body, when set, is POSTed.
	body string
	// evt is the event that fails.
	evt string
	// errHas is part of the error's message.
	errHas string
	// noStack: the error has no Lua stack (the budget).
	noStack bool
	// max bounds one hostile request.
	max time.Duration
}

// onEvil wraps a hostile chunk so that it runs only for /evil.
func onEvil(code string) string {
	return "if avi.http.get_path() == \"/evil\" then\n" + code + "\nend"
}

// runHostile serves each case on its own virtual service (so that each
// publishes its own DATASCRIPT_ERROR) and checks that the hostile
// requests get 500 in time while good requests to the same virtual
// service and to another one keep getting 200.
func runHostile(t *testing.T, cases []hostileCase) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "ok %s", r.URL.Path)
	}))
	defer backend.Close()
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().(*net.TCPAddr)
	dead.Close()

	var log eventLog
	// Five times the default budget: the cases that are not loops (a
	// doubling that copies 2 MiB, say) end in their own error even when
	// -race and a loaded machine slow them; the loops still end at it.
	r := newRigWith(t, Options{Events: log.publisher(), ScriptBudget: 5 * datascript.DefaultBudget}, poolOf(backend), "")
	r.store.put(spec.KindPool, "empty", `{"servers": []}`)
	r.store.put(spec.KindPool, "dead", fmt.Sprintf(`{"servers": [{"ip": "127.0.0.1", "port": %d}]}`, deadAddr.Port))
	// The other virtual service runs a script too.
	r.attachScripts(t, spec.DataScriptSet{DataScript: chunks(evtReq, `avi.http.add_header("X-Good", "1")`)}, "")

	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set, vs := fmt.Sprintf("evil%d", i), fmt.Sprintf("hostile%d", i)
			r.store.put(spec.KindDataScriptSet, set, specJSON(t, spec.DataScriptSet{DataScript: tc.chunks, PoolRefs: tc.poolRefs}))
			r.store.put(spec.KindVirtualService, vs, `{"listen": "127.0.0.1:0", "pool": "web", "datascripts": ["`+set+`"]}`)
			waitFor(t, "the virtual service", 5*time.Second, func() bool { return r.proxy.Addr(vs) != "" })
			base := "http://" + r.proxy.Addr(vs)
			evil := func() (int, time.Duration) {
				start := time.Now()
				var resp *http.Response
				var err error
				if tc.body != "" {
					resp, err = http.Post(base+"/evil", "application/json", strings.NewReader(tc.body))
				} else {
					resp, err = http.Get(base + "/evil")
				}
				if err != nil {
					t.Fatalf("hostile request: %v", err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp.StatusCode, time.Since(start)
			}
			waitFor(t, "the hostile script", 5*time.Second, func() bool { c, _ := evil(); return c == 500 })

			same, other := startTraffic(base+"/ok"), startTraffic(r.url("/"))
			// Hostile requests for a while, with the good ones alongside.
			limit := tc.max
			if limit == 0 {
				limit = time.Second
			}
			for n, start := 0, time.Now(); n < 3 || time.Since(start) < 200*time.Millisecond; n++ {
				code, d := evil()
				if code != 500 || d > limit {
					t.Fatalf("hostile request %d: %d in %v, want 500 within %v", n, code, d, limit)
				}
			}
			same.end(t, "same virtual service")
			other.end(t, "other virtual service")
			if code := status(http.DefaultClient, base+"/ok"); code != 200 {
				t.Fatalf("after the hostile requests: %d", code)
			}

			var d map[string]string
			waitFor(t, "DATASCRIPT_ERROR", 5*time.Second, func() bool {
				if errs := log.scriptErrors(t, vs); len(errs) > 0 {
					d = errs[0]
					return true
				}
				return false
			})
			evt := tc.evt
			if evt == "" {
				evt = evtReq
			}
			if d["datascript"] != set || d["virtual_service"] != vs || d["event"] != evt || !strings.Contains(d["error"], tc.errHas) {
				t.Fatalf("DATASCRIPT_ERROR details %v, want datascript %s, virtual_service %s, event %s, error with %q", d, set, vs, evt, tc.errHas)
			}
			if _, ok := d["stack_trace"]; !ok || (!tc.noStack && !strings.Contains(d["stack_trace"], `[string "`+set+`"]`)) {
				t.Fatalf("DATASCRIPT_ERROR stack_trace %q", d["stack_trace"])
			}
			r.store.delete(spec.KindVirtualService, vs)
		})
	}
}

// TestHostileScripts: a script that loops, exhausts memory, recurses
// without end or reaches for the system costs only its own request.
func TestHostileScripts(t *testing.T) {
	runHostile(t, []hostileCase{
		{
			name: "endless loop", chunks: chunks(evtReq, onEvil(`while true do end`)),
			errHas: "execution budget exceeded", noStack: true,
		},
		{
			name: "loop inside pcall", chunks: chunks(evtReq, onEvil(`while true do pcall(function() while true do end end) end`)),
			errHas: "execution budget exceeded", noStack: true,
		},
		{
			name: "string.rep bomb", chunks: chunks(evtReq, onEvil(`local s = string.rep("x", 1024 * 1024 * 1024)`)),
			errHas: "string.rep",
		},
		{
			name: "string.rep doubling", chunks: chunks(evtReq, onEvil(`local s = "xxxxxxxx" for i = 1, 40 do s = string.rep(s, 2) end`)),
			errHas: "over the limit",
		},
		{
			name: "deep recursion", chunks: chunks(evtReq, onEvil(`local function f(n) return 1 + f(n + 1) end f(1)`)),
			errHas: "stack overflow",
		},
		{
			name: "os.execute", chunks: chunks(evtReq, onEvil(`os.execute("id")`)),
			errHas: "attempt to call a non-function object",
		},
		{
			name: "io.open", chunks: chunks(evtReq, onEvil(`local f = io.open("/etc/passwd") avi.http.response(200, {}, f:read("*a"))`)),
			errHas: "attempt to index a non-table object(nil) with key 'open'",
		},
		{
			name: "require os", chunks: chunks(evtReq, onEvil(`local os2 = require("os") os2.execute("id")`)),
			errHas: "attempt to call a non-function object",
		},
		{
			name: "require a file", chunks: chunks(evtReq, onEvil(`require("/etc/passwd")`)),
			errHas: "attempt to call a non-function object",
		},
		{
			name: "dofile", chunks: chunks(evtReq, onEvil(`dofile("/etc/passwd")`)),
			errHas: "attempt to call a non-function object",
		},
		{
			name: "loadstring", chunks: chunks(evtReq, onEvil(`loadstring("os.exit(1)")()`)),
			errHas: "attempt to call a non-function object",
		},
	})
}

// TestScriptErrorInEveryEvent: error() in each event gets the request a
// 500 and a DATASCRIPT_ERROR naming the event.
func TestScriptErrorInEveryEvent(t *testing.T) {
	boom := `error("boom")`
	runHostile(t, []hostileCase{
		{name: "HTTP_REQ", chunks: chunks(evtReq, onEvil(boom)), errHas: "boom"},
		{
			name: "HTTP_REQ_DATA", chunks: chunks(evtReqData, onEvil(boom)), body: `{"a": 1}`,
			evt: evtReqData, errHas: "boom",
		},
		{name: "HTTP_LB_DONE", chunks: chunks(evtLBDone, onEvil(boom)), evt: evtLBDone, errHas: "boom"},
		{
			name: "HTTP_LB_FAILED", chunks: chunks(evtReq, onEvil(`avi.pool.select("empty")`), evtLBFailed, boom),
			poolRefs: []string{"empty"}, evt: evtLBFailed, errHas: "boom",
		},
		{name: "HTTP_RESP", chunks: chunks(evtResp, onEvil(boom)), evt: evtResp, errHas: "boom"},
		{
			name: "HTTP_RESP_DATA", chunks: chunks(evtResp, onEvil(`avi.http.set_response_body_buffer_size(64)`), evtRespData, boom),
			evt: evtRespData, errHas: "boom",
		},
		{
			name: "HTTP_RESP_FAILED", chunks: chunks(evtReq, onEvil(`avi.pool.select("dead")`), evtRespFail, boom),
			poolRefs: []string{"dead"}, evt: evtRespFail, errHas: "boom",
		},
		{name: "error with a table", chunks: chunks(evtReq, onEvil(`error({code = 42})`)), errHas: "table"},
	})
}

// TestScriptErrorEventsAreRateLimited: a script that fails on every
// request publishes about one DATASCRIPT_ERROR a second, not one per
// request.
func TestScriptErrorEventsAreRateLimited(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer backend.Close()
	var log eventLog
	r := newRigWith(t, Options{Events: log.publisher()}, poolOf(backend), "")
	r.attachScripts(t, spec.DataScriptSet{DataScript: chunks(evtReq, `error("always")`)}, "")
	waitFor(t, "the script", 5*time.Second, func() bool { return status(http.DefaultClient, r.url("/")) == 500 })
	waitFor(t, "the first DATASCRIPT_ERROR", 5*time.Second, func() bool { return len(log.scriptErrors(t, "vs")) == 1 })
	start := time.Now()
	n := 0
	for time.Since(start) < 1500*time.Millisecond {
		if code := status(http.DefaultClient, r.url("/")); code != 500 {
			t.Fatalf("%d, want 500", code)
		}
		n++
	}
	time.Sleep(100 * time.Millisecond)
	got := len(log.scriptErrors(t, "vs"))
	// The first came before the 1.5s; one more may come in them, a
	// second later.
	if n < 20 || got < 2 || got > 3 {
		t.Fatalf("%d failing requests in 1.5s published %d DATASCRIPT_ERROR in all, want 2 or 3", n, got)
	}
}

// TestScriptErrorDoesNotKeepAnUnreadBody: when a request script fails
// before the request's body was read, the connection is not used for
// another request: the body must not be read as one.
func TestScriptErrorDoesNotKeepAnUnreadBody(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path)
		mu.Unlock()
	}))
	defer backend.Close()
	r := newRig(t, poolOf(backend), "")
	r.attachScripts(t, spec.DataScriptSet{DataScript: chunks(evtReq,
		`if avi.http.method() == "POST" then error("no posts") end`)}, "")
	waitFor(t, "the script", 5*time.Second, func() bool {
		resp, err := http.Post(r.url("/"), "text/plain", strings.NewReader("x"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 500
	})
	mu.Lock()
	seen = nil
	mu.Unlock()
	smuggled := "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	got := rawRequest(t, r.proxy.Addr("vs"), fmt.Sprintf("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(smuggled), smuggled), 2*time.Second)
	if statusOf(got) != "HTTP/1.1 500 Internal Server Error" || strings.Count(got, "HTTP/1.1 ") != 1 {
		t.Fatalf("got %q, want one 500", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 0 {
		t.Fatalf("the backend got %q from the body of a refused request", seen)
	}
}

// TestSlowClientBodyIsCutOff: a client whose body stalls longer than
// timeouts.client_body loses its connection, the request the backend was
// reading is ended, and the proxy goes on serving.
func TestSlowClientBodyIsCutOff(t *testing.T) {
	type result struct {
		n   int
		err error
	}
	bodies := make(chan result, 4)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if r.URL.Path == "/upload" {
			bodies <- result{len(b), err}
		}
	}))
	defer backend.Close()
	r := newRig(t, poolOf(backend), `, "timeouts": {"client_body": "300ms"}`)

	// slowPost sends 100 of 1000 bytes, then a byte every 500ms, and
	// returns what came back and when the proxy closed.
	slowPost := func() (string, time.Duration) {
		c, err := net.Dial("tcp", r.proxy.Addr("vs"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		_, _ = io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"+strings.Repeat("a", 100))
		closed := make(chan string, 1)
		go func() {
			b, _ := io.ReadAll(c)
			closed <- string(b)
		}()
		for {
			select {
			case got := <-closed:
				return got, time.Since(start)
			case <-time.After(500 * time.Millisecond):
				if time.Since(start) > 5*time.Second {
					t.Fatal("the proxy kept a stalled upload for 5s")
				}
				_, _ = io.WriteString(c, "a")
			}
		}
	}

	t.Run("streamed to the backend", func(t *testing.T) {
		got, d := slowPost()
		if strings.Contains(got, " 200 ") || d < 250*time.Millisecond || d > 3*time.Second {
			t.Fatalf("the proxy answered %q after %v, want the connection closed after about 300ms", got, d)
		}
		select {
		case res := <-bodies:
			if res.err == nil || res.n >= 1000 {
				t.Fatalf("the backend read %d bytes, err %v: want the body cut short", res.n, res.err)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("the backend was left waiting for the rest of the body")
		}
		if code := status(http.DefaultClient, r.url("/")); code != 200 {
			t.Fatalf("after: %d", code)
		}
	})

	t.Run("buffered for HTTP_REQ_DATA", func(t *testing.T) {
		r.attachScripts(t, spec.DataScriptSet{DataScript: chunks(evtReqData, `
if string.find(avi.http.get_req_body(), "forbidden") then avi.http.response(403) end`)}, `, "timeouts": {"client_body": "300ms"}`)
		waitFor(t, "the script", 5*time.Second, func() bool {
			resp, err := http.Post(r.url("/"), "text/plain", strings.NewReader("forbidden"))
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 403
		})
		got, d := slowPost()
		if strings.Contains(got, " 200 ") || d < 250*time.Millisecond || d > 3*time.Second {
			t.Fatalf("the proxy answered %q after %v, want the connection closed after about 300ms", got, d)
		}
		select {
		case res := <-bodies:
			t.Fatalf("the backend got a request for a body never received: %d bytes", res.n)
		default:
		}
		if code := status(http.DefaultClient, r.url("/")); code != 200 {
			t.Fatalf("after: %d", code)
		}
	})
}

// TestServerStallsMidBody: a server that sends its head and part of the
// body and then stalls past server_timeout: the client's connection is
// closed, as the response cannot be completed, the server's connection
// too, and the proxy goes on serving.
func TestServerStallsMidBody(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	serverSawClose := make(chan bool, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/stall" {
			fmt.Fprint(w, "fast")
			return
		}
		w.Header().Set("Content-Length", "1000")
		_, _ = w.Write([]byte(strings.Repeat("b", 100)))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			serverSawClose <- true
		case <-release:
		}
	}))
	defer backend.Close()
	pool := poolOf(backend)
	r := newRig(t, pool[:len(pool)-1]+`, "server_timeout": "300ms"}`, "")

	start := time.Now()
	resp, err := http.Get(r.url("/stall"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(b) != 100 {
		t.Fatalf("read %d bytes, err %v: want the 100 sent and the connection closed", len(b), err)
	}
	if d < 250*time.Millisecond || d > 3*time.Second {
		t.Fatalf("the connection closed after %v, want about 300ms", d)
	}
	select {
	case <-serverSawClose:
	case <-time.After(3 * time.Second):
		t.Fatal("the proxy kept the stalled server connection")
	}
	for range 3 {
		resp, body := do(t, http.DefaultClient, "GET", r.url("/fast"), nil, nil)
		if resp.StatusCode != 200 || body != "fast" {
			t.Fatalf("after: %d %q", resp.StatusCode, body)
		}
	}
}
