package datascript

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/dataplane/spec"
)

func TestRemovedFunctions(t *testing.T) {
	var b strings.Builder
	b.WriteString("local present = {}\n")
	for _, n := range []string{
		"dofile", "loadfile", "load", "loadstring", "require", "module", "collectgarbage", "print",
		"getfenv", "setfenv", "newproxy", "io", "package", "debug", "coroutine", "channel",
		"os.execute", "os.exit", "os.getenv", "os.remove", "os.rename", "os.tmpname", "os.setenv",
		"string.dump", "math.randomseed",
	} {
		b.WriteString("if " + n + " ~= nil then present[#present+1] = \"" + n + "\" end\n")
	}
	b.WriteString(`if #present > 0 then error("present: " .. table.concat(present, ", ")) end`)
	run(t, spec.EvtHTTPReq, b.String(), newTxn("/"))
}

func TestLibrariesAreReadOnly(t *testing.T) {
	for _, src := range []string{
		`avi.http.send = nil`,
		`avi.vs = {}`,
		`string.rep = nil`,
		`rawset(avi.http, "uri", "/x")`,
		`rawset(string, "x", 1)`,
		`table.insert(avi, 1)`,
		`setmetatable(avi, nil)`,
		`getmetatable("").__index.rep = nil`,
		`setmetatable(_G, nil)`,
		`rawset(avi.vs.reqvar, "x", 1)`,
	} {
		if err := runErr(t, spec.EvtHTTPReq, src, newTxn("/")); err == nil {
			t.Errorf("%s: no error", src)
		}
	}
	// After all that, a fresh run still sees the library intact.
	run(t, spec.EvtHTTPReq, `assert(getmetatable("") == false); assert(avi.http.send and string.rep and avi.vs.name)`, newTxn("/"))
}

func TestGlobalsDoNotLeak(t *testing.T) {
	s := script(t, spec.EvtHTTPReq, `if counter ~= nil or _G.other ~= nil then error("leaked") end; counter = 1; _G.other = 2; x = {}`)
	env := testEnv(t, s)
	env.MaxConcurrent = 1 // one state, reused
	e := NewEngine(env)
	for range 3 {
		if err := e.Run(context.Background(), spec.EvtHTTPReq, newTxn("/")); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHostileScripts(t *testing.T) {
	hostile := map[string]string{
		"endless loop":            `while true do end`,
		"endless loop with pcall": `while true do pcall(function() while true do end end) end`,
		"string.rep bomb":         `local s = string.rep("x", 1e9)`,
		"format bomb":             `local s = string.format("%999999999d", 1)`,
		"concat bomb":             `local t = {}; for i = 1, 2e6 do t[i] = "xxxxxxxxxx" end; local s = table.concat(t)`,
		"gsub bomb":               `local s = string.rep("x", 1e6); s = s:gsub("", string.rep("y", 1000))`,
		"find at every byte":      `local s = string.rep('"', 1e6); s:find('"%d')`,
		"deep recursion":          `local function f(n) return f(n + 1) + 1 end; f(1)`,
		"pcall recursion":         `local function f() pcall(f); f() end; f()`,
		"unpack bomb":             `local t = {}; for i = 1, 1e6 do t[i] = i end; unpack(t)`,
		"os.execute":              `os.execute("touch /tmp/pwned")`,
		"io.open":                 `io.open("/etc/passwd")`,
		"require":                 `require("os")`,
		"loadstring":              `loadstring("return 1")()`,
		"error":                   `error("boom")`,
		"error with a table":      `error({})`,
	}
	env := testEnv(t)
	env.Budget = 50 * time.Millisecond
	benign := script(t, spec.EvtHTTPReq, `if avi.http.uri == "/secure/" then avi.http.send(403) end`)
	for name, src := range hostile {
		t.Run(name, func(t *testing.T) {
			env := env
			env.Sets = []*Set{script(t, spec.EvtHTTPReq, src)}
			e := NewEngine(env)
			good := NewEngine(testEnv(t, benign))
			// A benign engine keeps serving while the hostile one runs.
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var benignErr error
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					txn := newTxn("/secure/")
					if err := good.Run(context.Background(), spec.EvtHTTPReq, txn); err != nil || txn.Action.Status != 403 {
						benignErr = errors.Join(err, errors.New("benign run failed"))
						return
					}
					time.Sleep(time.Millisecond)
				}
			})
			start := time.Now()
			err := e.Run(context.Background(), spec.EvtHTTPReq, newTxn("/"))
			took := time.Since(start)
			close(stop)
			wg.Wait()
			se := asScriptError(t, err)
			if took > 2*time.Second {
				t.Errorf("took %v", took)
			}
			if benignErr != nil {
				t.Error(benignErr)
			}
			t.Logf("%v after %v", se, took)
			// The engine still serves.
			if err := e.Run(context.Background(), spec.EvtHTTPReq, newTxn("/")); err == nil {
				t.Error("hostile script succeeded the second time")
			}
		})
	}
}

func TestBudgetMessage(t *testing.T) {
	env := testEnv(t, script(t, spec.EvtHTTPReq, `while true do end`))
	env.Budget = 20 * time.Millisecond
	err := NewEngine(env).Run(context.Background(), spec.EvtHTTPReq, newTxn("/"))
	if se := asScriptError(t, err); !strings.Contains(se.Err, "budget exceeded") || se.Set != "S" {
		t.Errorf("err = %+v", se)
	}
}

func TestBusy(t *testing.T) {
	env := testEnv(t, script(t, spec.EvtHTTPReq, `local t = os.clock(); while os.clock() - t < 0.2 do end`))
	env.MaxConcurrent = 1
	env.Budget = time.Second
	env.QueueWait = 5 * time.Millisecond
	e := NewEngine(env)
	started := make(chan struct{})
	done := make(chan error)
	go func() {
		close(started)
		done <- e.Run(context.Background(), spec.EvtHTTPReq, newTxn("/"))
	}()
	<-started
	time.Sleep(50 * time.Millisecond)
	if err := e.Run(context.Background(), spec.EvtHTTPReq, newTxn("/")); !errors.Is(err, ErrBusy) {
		t.Errorf("second run: %v, want ErrBusy", err)
	}
	if err := <-done; err != nil {
		t.Errorf("first run: %v", err)
	}
}

func TestConcurrentRuns(t *testing.T) {
	env := testEnv(t, script(t, spec.EvtHTTPReq, `avi.vs.reqvar.n = (avi.vs.reqvar.n or 0) + 1; avi.vs.table_insert(avi.http.get_path(), 1); x = avi.http.uri; avi.http.add_header("X-Path", x)`))
	// Eight runs on two cores under -race and a loaded machine: the
	// default 50 ms of wall clock is about the budget, not this test.
	env.Budget = 10 * time.Second
	e := NewEngine(env)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				p := "/" + itoa(i) + "/" + itoa(j)
				txn := newTxn(p)
				if err := e.Run(context.Background(), spec.EvtHTTPReq, txn); err != nil {
					t.Error(err)
					return
				}
				if header(txn.Req.Fields, "X-Path") != p {
					t.Errorf("X-Path %q, want %q", header(txn.Req.Fields, "X-Path"), p)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestUpdateKeepsTables(t *testing.T) {
	insert := script(t, spec.EvtHTTPReq, `avi.vs.table_insert("k", "v")`)
	e := NewEngine(testEnv(t, insert))
	if err := e.Run(context.Background(), spec.EvtHTTPReq, newTxn("/")); err != nil {
		t.Fatal(err)
	}
	env := testEnv(t, script(t, spec.EvtHTTPReq, `avi.vs.reqvar.v = avi.vs.table_lookup("k")`))
	env.MaxConcurrent = 3
	e.Update(env)
	txn := newTxn("/")
	if err := e.Run(context.Background(), spec.EvtHTTPReq, txn); err != nil {
		t.Fatal(err)
	}
	if lvString(txn.reqvars["v"]) != "v" {
		t.Errorf("table lost on Update: %v", txn.reqvars)
	}
	if e.Has(spec.EvtHTTPResp) || !e.Has(spec.EvtHTTPReq) {
		t.Error("Has")
	}
}

func TestCompileErrors(t *testing.T) {
	for _, c := range []struct {
		ds          spec.DataScriptSet
		field, want string
	}{
		{
			spec.DataScriptSet{DataScript: []spec.DataScript{{Evt: spec.EvtHTTPReq, Script: "x = 1"}, {Evt: spec.EvtHTTPResp, Script: "local a = 1\nlocal b\nif a then\n b avi.vs.log(1) end"}}},
			"spec.datascript[1].script", "X:4:",
		},
		{
			spec.DataScriptSet{DataScript: []spec.DataScript{{Evt: spec.EvtHTTPReq, Script: "if true then"}}},
			"spec.datascript[0].script", "luac: X:1: syntax error near <eof>",
		},
		{
			spec.DataScriptSet{DataScript: []spec.DataScript{{Evt: "BOGUS", Script: "x = 1"}}},
			"spec.datascript[0].evt", "unknown event",
		},
		{
			spec.DataScriptSet{PoolRefs: []string{"web"}, DataScript: []spec.DataScript{{Evt: spec.EvtHTTPReq, Script: "\n\navi.pool.select(\"other\")"}}},
			"spec.datascript[0].script", `line 3: avi.pool.select names pool "other", which is not in the set's pool_refs`,
		},
		{
			spec.DataScriptSet{DataScript: []spec.DataScript{{Evt: spec.EvtHTTPReq, Script: `if x then local v, m = avi.stringgroup.contains_CASE("g", "s") end`}}},
			"spec.datascript[0].script", "string_group_refs",
		},
		{
			spec.DataScriptSet{DataScript: []spec.DataScript{{Evt: spec.EvtHTTPReq, Script: `local f = function() return avi.ipgroup.contains("ips", "1.2.3.4") end`}}},
			"spec.datascript[0].script", "ip_group_refs",
		},
		{
			spec.DataScriptSet{DataScript: []spec.DataScript{{Evt: spec.EvtHTTPReq, Script: `if avi.vs.ratelimit.exceed("rl", "k") then end`}}},
			"spec.datascript[0].script", "rate_limiters",
		},
		{
			spec.DataScriptSet{DataScript: []spec.DataScript{{Evt: spec.EvtHTTPReq, Script: `avi.pool.get_servers("p")`}}},
			"spec.datascript[0].script", "pool_refs",
		},
	} {
		_, err := Compile("X", &c.ds)
		var fe *config.FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%v: err = %v, want a FieldError", c.ds.DataScript, err)
			continue
		}
		if fe.Field != c.field || !strings.Contains(fe.Message, c.want) {
			t.Errorf("err = %s / %s, want %s / ...%s...", fe.Field, fe.Message, c.field, c.want)
		}
	}
	// Dynamic names and listed ones compile.
	ok := spec.DataScriptSet{PoolRefs: []string{"web"}, DataScript: []spec.DataScript{{Evt: spec.EvtHTTPReq, Script: `avi.pool.select("web"); local p = "x"; avi.pool.select(p)`}}}
	if _, err := Compile("X", &ok); err != nil {
		t.Error(err)
	}
}

func TestRuntimeErrorNamesChunkAndLine(t *testing.T) {
	err := runErr(t, spec.EvtHTTPReq, "local a = 1\navi.http.close_connection()", newTxn("/"))
	se := asScriptError(t, err)
	if !strings.HasPrefix(se.Err, `[string "S"]:2:`) || se.Evt != spec.EvtHTTPReq {
		t.Errorf("err = %+v", se)
	}
	if !strings.Contains(se.Error(), "HTTP_REQ") {
		t.Errorf("Error() = %q", se.Error())
	}
}
