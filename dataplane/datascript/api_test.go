package datascript

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/dataplane/httpmsg"
	"github.com/vigilhq/vigil/dataplane/spec"
)

// The cases are Lua: each asserts what the function gives. eq is a helper
// defined before every case.
const eqHelper = `local function eq(got, want, what)
  if got ~= want then error((what or "value") .. ": got " .. tostring(got) .. ", want " .. tostring(want), 2) end
end
`

type luaCase struct {
	name string
	evt  string // default HTTP_REQ
	txn  func() *Txn
	src  string
}

func runCases(t *testing.T, cases []luaCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evt := c.evt
			if evt == "" {
				evt = spec.EvtHTTPReq
			}
			txn := newTxn("/a/b%20c/d.htm?x=1&y=a%20b&y=2&flag&e=", "Host", "www.example.com:8443",
				"Cookie", "sid=123; lang=en", "X-Multi", "1", "X-Multi", "2")
			if c.txn != nil {
				txn = c.txn()
			}
			run(t, evt, eqHelper+c.src, txn)
		})
	}
}

func respTxn() *Txn {
	txn := newTxn("/r?q=1", "Host", "h.example.com", "Cookie", "sid=req")
	txn.Resp = &httpmsg.Response{Major: 1, Minor: 1, Status: 200}
	txn.Resp.Fields.Add("Set-Cookie", "sid=resp; Path=/")
	txn.Resp.Fields.Add("Content-Type", "text/html")
	txn.ServerIP = "10.0.0.1"
	return txn
}

func TestVS(t *testing.T) {
	runCases(t, []luaCase{
		{name: "name", src: `eq(avi.vs.name(), "vs1")`},
		{name: "client_ip", src: `eq(avi.vs.client_ip(), "198.51.100.7")`},
		{name: "client_port is a string", src: `eq(avi.vs.client_port(), "54321")`},
		{name: "ip", src: `eq(avi.vs.ip(), "203.0.113.1")`},
		{name: "port is a string", src: `eq(avi.vs.port(), "443"); eq(type(avi.vs.port()), "string")`},
		{name: "get_open_conns", src: `eq(avi.vs.get_open_conns(), 7)`},
		{name: "reqvar any value", src: `avi.vs.reqvar.t = {1, 2}; eq(avi.vs.reqvar.t[2], 2); avi.vs.reqvar.t = nil; eq(avi.vs.reqvar.t, nil)`},
		{name: "set_reqvar and get_reqvar share reqvar", src: `avi.http.set_reqvar("a", 5); eq(avi.vs.reqvar.a, 5); avi.vs.reqvar.b = "x"; eq(avi.http.get_reqvar("b"), "x")`},
		{name: "ratelimit.exceed", src: `eq(avi.vs.ratelimit.exceed("rl", "k"), false); eq(avi.vs.ratelimit.exceed("rl", "k"), false); eq(avi.vs.ratelimit.exceed("rl", "k"), true); eq(avi.vs.ratelimit.exceed("rl", "other", 2), false)`},
		{name: "rate_limit without a limit", src: `local x, a = avi.vs.rate_limit(avi.RL_CUSTOM_STRING, "k"); eq(x, false); eq(a, avi.RL_ACTION_NONE)`},
	})
}

func TestHTTPReq(t *testing.T) {
	runCases(t, []luaCase{
		{name: "uri field", src: `eq(avi.http.uri, "/a/b%20c/d.htm")`},
		{name: "get_header one", src: `eq(avi.http.get_header("host"), "www.example.com:8443")`},
		{name: "get_header missing", src: `eq(avi.http.get_header("nope"), nil)`},
		{name: "get_header repeated is a table", src: `local v = avi.http.get_header("x-multi"); eq(type(v), "table"); eq(v[1], "1"); eq(v[2], "2")`},
		{name: "get_header all", src: `local h = avi.http.get_header(); eq(h["Host"], "www.example.com:8443"); eq(h["X-Multi"][2], "2")`},
		{name: "add_header appends", src: `avi.http.add_header("X-Multi", "3"); eq(#avi.http.get_header("X-Multi"), 3)`},
		{name: "replace_header", src: `avi.http.replace_header("X-Multi", "z"); eq(avi.http.get_header("X-Multi"), "z"); avi.http.replace_header("New", "n"); eq(avi.http.get_header("new"), "n")`},
		{name: "remove_header", src: `avi.http.remove_header("x-multi"); eq(avi.http.get_header("X-Multi"), nil)`},
		{name: "add_header refuses CRLF", src: `local ok = pcall(avi.http.add_header, "X", "a\r\nB: c"); eq(ok, false)`},
		{name: "get_path decoded", src: `eq(avi.http.get_path(), "/a/b c/d.htm")`},
		{name: "get_path raw", src: `eq(avi.http.get_path(false), "/a/b%20c/d.htm")`},
		{name: "set_path keeps the query", src: `avi.http.set_path("/new"); eq(avi.http.get_uri(false), "/new?x=1&y=a%20b&y=2&flag&e="); eq(avi.http.uri, "/new")`},
		{name: "get_path_tokens", src: `local t = avi.http.get_path_tokens(); eq(#t, 3); eq(t[2], "b c"); eq(avi.http.get_path_tokens(1), "a/b c/d.htm"); eq(avi.http.get_path_tokens(2, 3), "b c/d.htm"); eq(avi.http.get_path_tokens(2, 2), "b c"); eq(avi.http.get_path_tokens(7), nil)`},
		{name: "get_host_tokens", src: `eq(avi.http.get_host_tokens(1), "www.example.com"); eq(avi.http.get_host_tokens(2, 2), "example"); eq(avi.http.get_host_tokens(6), nil); eq(#avi.http.get_host_tokens(), 3)`},
		{name: "get_uri", src: `eq(avi.http.get_uri(), "/a/b c/d.htm?x=1&y=a b&y=2&flag&e="); eq(avi.http.get_uri(false), "/a/b%20c/d.htm?x=1&y=a%20b&y=2&flag&e=")`},
		{name: "set_uri", src: `avi.http.set_uri("/z?k=v"); eq(avi.http.get_query("k"), "v"); eq(avi.http.uri, "/z")`},
		{name: "get_query string", src: `eq(avi.http.get_query(), "x=1&y=a%20b&y=2&flag&e=")`},
		{name: "get_query arg", src: `eq(avi.http.get_query("x"), "1"); eq(avi.http.get_query("y"), "a%20b"); eq(avi.http.get_query("y", true), "a b"); eq(avi.http.get_query("flag"), true); eq(avi.http.get_query("none"), nil)`},
		{name: "get_query table", src: `local q = avi.http.get_query(avi.QUERY_TABLE); eq(q.x, "1"); eq(type(q.y), "table"); eq(q.y[1], "a b"); eq(q.y[2], "2"); eq(q.flag, true); eq(q.e, "")`},
		{name: "set_query string", src: `avi.http.set_query("a=b"); eq(avi.http.get_uri(false), "/a/b%20c/d.htm?a=b")`},
		{name: "set_query int", src: `avi.http.set_query(5); eq(avi.http.get_query(), "5")`},
		{name: "set_query table", src: `avi.http.set_query({b="x y", a=true, c={1, 2}}); eq(avi.http.get_query(), "a&b=x+y&c=1&c=2")`},
		{name: "hostname strips the port", src: `eq(avi.http.hostname(), "www.example.com")`},
		{
			name: "hostname from an absolute target", txn: func() *Txn { return newTxn("http://abs.example.com:81/p?q", "Host", "other") },
			src: `eq(avi.http.hostname(), "abs.example.com"); eq(avi.http.get_path(), "/p"); eq(avi.http.uri, "/p")`,
		},
		{name: "method", src: `eq(avi.http.method(), avi.HTTP_GET)`},
		{name: "protocol scheme secure plain", src: `eq(avi.http.protocol(), "http"); eq(avi.http.scheme(), "http://"); eq(avi.http.secure(), nil)`},
		{
			name: "protocol scheme secure TLS", txn: func() *Txn { x := newTxn("/"); x.Secure = true; return x },
			src: `eq(avi.http.protocol(), "https"); eq(avi.http.scheme(), "https://"); eq(avi.http.secure(), "on")`,
		},
		{name: "get_cookie", src: `eq(avi.http.get_cookie("sid"), "123"); eq(avi.http.get_cookie("no"), nil)`},
		{name: "get_cookie_names returns table and count", src: `local t, n = avi.http.get_cookie_names(); eq(n, 2); eq(t[1], "sid"); eq(t[2], "lang")`},
		{name: "cookie_exists", src: `eq(avi.http.cookie_exists("lang"), true); eq(avi.http.cookie_exists("x"), false)`},
		{name: "add_cookie pairs", src: `avi.http.add_cookie("a", "1", "b", "2"); eq(avi.http.get_header("Cookie"), "sid=123; lang=en; a=1; b=2")`},
		{name: "add_cookie table", src: `avi.http.add_cookie({jsessionid="123", lang2="en"}); eq(avi.http.get_cookie("jsessionid"), "123"); eq(avi.http.get_cookie("lang2"), "en")`},
		{name: "replace_cookie", src: `avi.http.replace_cookie("sid", "9"); eq(avi.http.get_cookie("sid"), "9"); local _, n = avi.http.get_cookie_names(); eq(n, 2)`},
		{name: "remove_cookie", src: `avi.http.remove_cookie("sid", "lang"); eq(avi.http.get_header("Cookie"), nil)`},
		{
			name: "userid precedence", txn: func() *Txn { x := newTxn("/"); x.UserIDFromAuth = "basic"; return x },
			src: `eq(avi.http.get_userid(), "basic"); avi.http.set_userid("custom"); eq(avi.http.get_userid(), "custom")`,
		},
		{name: "get_request_id", src: `eq(avi.http.get_request_id(), "req-1")`},
		{
			name: "get_request_id from the sequence", txn: func() *Txn { x := newTxn("/"); x.RequestID, x.RequestSeq = "", 1295; return x },
			src: `eq(avi.http.get_request_id(), "zz")`,
		},
		{name: "set_server_timeout", src: `avi.http.set_server_timeout(1500)`},
		{name: "set_request_body_buffer_size", src: `avi.http.set_request_body_buffer_size(64)`},
		{name: "chash", src: `avi.pool.chash("user-1")`},
	})
}

func TestHTTPResp(t *testing.T) {
	runCases(t, []luaCase{
		{name: "status is a string", evt: spec.EvtHTTPResp, txn: respTxn, src: `eq(avi.http.status(), "200")`},
		{name: "get_header of the response", evt: spec.EvtHTTPResp, txn: respTxn, src: `eq(avi.http.get_header("content-type"), "text/html")`},
		{
			name: "HTTP_REQUEST context in RESP", evt: spec.EvtHTTPResp, txn: respTxn,
			src: `eq(avi.http.get_header("Host", avi.HTTP_REQUEST), "h.example.com"); eq(avi.http.get_header("Host"), nil); eq(avi.http.get_cookie("sid", avi.HTTP_REQUEST), "req"); eq(avi.http.get_cookie("sid"), "resp"); eq(avi.http.cookie_exists("sid", avi.HTTP_REQUEST), true); local t, n = avi.http.get_cookie_names(avi.HTTP_REQUEST); eq(n, 1)`,
		},
		{name: "HTTP_RESPONSE context in RESP", evt: spec.EvtHTTPResp, txn: respTxn, src: `eq(avi.http.get_header("Content-Type", avi.HTTP_RESPONSE), "text/html")`},
		{name: "get_header table by context", evt: spec.EvtHTTPResp, txn: respTxn, src: `eq(avi.http.get_header(avi.HTTP_REQUEST)["Host"], "h.example.com")`},
		{
			name: "add_cookie in RESP writes Set-Cookie", evt: spec.EvtHTTPResp, txn: respTxn,
			src: `avi.http.add_cookie("jsessionid", "123", "/", "www.example.com", 0, 60, true, true); local v = avi.http.get_header("Set-Cookie"); eq(v[2], "jsessionid=123; Path=/; Domain=www.example.com; Max-Age=60; HttpOnly; Secure")`,
		},
		{
			name: "add_cookie table in RESP", evt: spec.EvtHTTPResp, txn: respTxn,
			src: `avi.http.add_cookie({session_id="abc", secure=true, path="/"}); eq(avi.http.get_header("Set-Cookie")[2], "session_id=abc; Path=/; Secure")`,
		},
		{name: "remove_cookie in RESP", evt: spec.EvtHTTPResp, txn: respTxn, src: `avi.http.remove_cookie("sid"); eq(avi.http.get_header("Set-Cookie"), nil)`},
		{name: "server_ip", evt: spec.EvtHTTPResp, txn: respTxn, src: `eq(avi.pool.server_ip(), "10.0.0.1")`},
		{name: "set_response_body_buffer_size", evt: spec.EvtHTTPResp, txn: respTxn, src: `avi.http.set_response_body_buffer_size(8)`},
		{
			name: "get_response_body", evt: spec.EvtHTTPRespData, txn: func() *Txn { x := respTxn(); x.RespBody = []byte(strings.Repeat("a", 3000)); return x },
			src: `eq(#avi.http.get_response_body(1), 1024); eq(#avi.http.get_response_body(4), 3000); eq(avi.http.get_response_body(1, 2990), "aaaaaaaaaa")`,
		},
		{
			name: "get_req_body", evt: spec.EvtHTTPReqData, txn: func() *Txn { x := newTxn("/"); x.ReqBody = []byte("hello"); return x },
			src: `eq(avi.http.get_req_body(), "hello")`,
		},
		{
			name: "internal_status", evt: spec.EvtHTTPRespFailed, txn: func() *Txn { x := newTxn("/"); x.InternalStatus = 502; return x },
			src: `eq(avi.http.internal_status(), 502)`,
		},
	})
}

func TestEventRules(t *testing.T) {
	for _, c := range []struct{ evt, src, want string }{
		{spec.EvtHTTPResp, `avi.http.set_path("/x")`, "avi.http.set_path is not allowed in HTTP_RESP"},
		{spec.EvtHTTPReq, `avi.http.status()`, "avi.http.status is not allowed in HTTP_REQ"},
		{spec.EvtHTTPRespFailed, `avi.http.get_header("a")`, "avi.http.get_header is not allowed in HTTP_RESP_FAILED"},
		{spec.EvtHTTPReq, `avi.http.get_req_body()`, "not allowed in HTTP_REQ"},
		{spec.EvtHTTPResp, `avi.pool.select("web")`, "avi.pool.select is not allowed in HTTP_RESP"},
	} {
		txn := respTxn()
		err := runErr(t, c.evt, c.src, txn)
		se := asScriptError(t, err)
		if !strings.Contains(se.Err, c.want) {
			t.Errorf("%s in %s: %q, want %q", c.src, c.evt, se.Err, c.want)
		}
	}
	// What RESP_FAILED allows.
	txn := newTxn("/")
	run(t, spec.EvtHTTPRespFailed, `avi.http.response(503, {}, "down")`, txn)
	if txn.Action.Status != 503 {
		t.Errorf("response in RESP_FAILED: %+v", txn.Action)
	}
}

func TestTerminalActions(t *testing.T) {
	t.Run("send stops the chunk and later sets", func(t *testing.T) {
		s1 := script(t, spec.EvtHTTPReq, `avi.vs.log("one"); if avi.http.uri == "/secure/" then avi.http.send(403) end; avi.vs.log("after")`)
		s2 := mustSet(t, "S2", spec.DataScriptSet{DataScript: []spec.DataScript{{Evt: spec.EvtHTTPReq, Script: `avi.vs.log("two")`}}})
		e := NewEngine(testEnv(t, s1, s2))
		txn := newTxn("/secure/")
		if err := e.Run(context.Background(), spec.EvtHTTPReq, txn); err != nil {
			t.Fatal(err)
		}
		if txn.Action.Kind != ActionRespond || txn.Action.Status != 403 || header(txn.Action.Header, "Content-Type") != "text/plain" {
			t.Errorf("action = %+v", txn.Action)
		}
		if len(txn.Log) != 1 || txn.Log[0] != `[string "S"]:1: one` {
			t.Errorf("log = %q", txn.Log)
		}
		txn = newTxn("/open/")
		if err := e.Run(context.Background(), spec.EvtHTTPReq, txn); err != nil {
			t.Fatal(err)
		}
		if txn.Action.Kind != ActionNone || len(txn.Log) != 3 || txn.Log[2] != `[string "S2"]:1: two` {
			t.Errorf("action %+v log %q", txn.Action, txn.Log)
		}
	})
	t.Run("response header names and body", func(t *testing.T) {
		txn := newTxn("/")
		run(t, spec.EvtHTTPReq, `avi.http.response(404, {content_type="text/html", Access_Control_Allow_Origin="*"}, "<b>no</b>")`, txn)
		a := txn.Action
		if a.Status != 404 || header(a.Header, "Content-Type") != "text/html" || header(a.Header, "Access-Control-Allow-Origin") != "*" || string(a.Body) != "<b>no</b>" || len(a.Header) != 2 {
			t.Errorf("action = %+v", a)
		}
	})
	t.Run("unsupported status", func(t *testing.T) {
		if err := runErr(t, spec.EvtHTTPReq, `avi.http.response(418)`, newTxn("/")); err == nil {
			t.Error("418 accepted")
		}
	})
	t.Run("redirect", func(t *testing.T) {
		txn := newTxn("/")
		run(t, spec.EvtHTTPReq, `avi.http.redirect("https://x.example/" .. avi.http.get_uri(), 301); error("not reached")`, txn)
		if txn.Action.Status != 301 || header(txn.Action.Header, "Location") != "https://x.example//" {
			t.Errorf("action = %+v", txn.Action)
		}
		txn = newTxn("/")
		run(t, spec.EvtHTTPReq, `avi.http.redirect("/login")`, txn)
		if txn.Action.Status != 302 {
			t.Errorf("default status %d", txn.Action.Status)
		}
	})
	t.Run("close_conn", func(t *testing.T) {
		txn := newTxn("/")
		run(t, spec.EvtHTTPReq, `avi.http.close_conn(true)`, txn)
		if txn.Action.Kind != ActionClose || !txn.Action.Reset {
			t.Errorf("action = %+v", txn.Action)
		}
	})
	t.Run("pcall does not catch a terminal action", func(t *testing.T) {
		txn := newTxn("/")
		run(t, spec.EvtHTTPReq, `pcall(avi.http.send, 403); avi.vs.log("after")`, txn)
		if txn.Action.Status != 403 || len(txn.Log) != 0 {
			t.Errorf("action %+v log %q", txn.Action, txn.Log)
		}
	})
}

func TestReqvarAcrossEvents(t *testing.T) {
	s := mustSet(t, "S", spec.DataScriptSet{DataScript: []spec.DataScript{
		{Evt: spec.EvtHTTPReq, Script: `avi.vs.reqvar.foo = 10; avi.vs.reqvar.t = {n = 1}; seen = 1`},
		{Evt: spec.EvtHTTPResp, Script: `if avi.vs.reqvar.foo == 10 and avi.vs.reqvar.t.n == 1 and seen == nil then avi.vs.log("Foo=" .. avi.vs.reqvar.foo) end`},
	}})
	e := NewEngine(testEnv(t, s))
	txn := respTxn()
	for _, evt := range []string{spec.EvtHTTPReq, spec.EvtHTTPResp} {
		if err := e.Run(context.Background(), evt, txn); err != nil {
			t.Fatal(err)
		}
	}
	if len(txn.Log) != 1 || txn.Log[0] != `[string "S"]:1: Foo=10` {
		t.Fatalf("log = %q", txn.Log)
	}
	txn.Reset()
	txn.Req, txn.Resp = respTxn().Req, respTxn().Resp
	if err := e.Run(context.Background(), spec.EvtHTTPResp, txn); err != nil {
		t.Fatal(err)
	}
	if len(txn.Log) != 0 {
		t.Errorf("reqvars leaked through Reset: %q", txn.Log)
	}
}

func TestLog(t *testing.T) {
	txn := newTxn("/")
	run(t, spec.EvtHTTPReq, "local n = 2\navi.vs.log(\"Hello \", n, \" \", true, \" \", nil)", txn)
	if len(txn.Log) != 1 || txn.Log[0] != `[string "S"]:2: Hello 2 true nil` {
		t.Errorf("log = %q", txn.Log)
	}
}

func TestTables(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	env := testEnv(t, script(t, spec.EvtHTTPReq, `
local op = avi.http.get_query("op")
if op == "insert" then avi.vs.reqvar.r = avi.vs.table_insert("k", "v1")
elseif op == "insert2" then avi.vs.reqvar.r = avi.vs.table_insert("k", "v2")
elseif op == "insert_short" then avi.vs.reqvar.r = avi.vs.table_insert("s", "x", 10)
elseif op == "insert_named" then avi.vs.reqvar.r = avi.vs.table_insert("tbl", "k", "named")
elseif op == "insert_named4" then avi.vs.reqvar.r = avi.vs.table_insert("tbl", "k4", 4, 20)
elseif op == "lookup" then local v, left = avi.vs.table_lookup("k"); avi.vs.reqvar.r = tostring(v) .. "/" .. tostring(left)
elseif op == "lookup0" then local v, left = avi.vs.table_lookup("k", 0); avi.vs.reqvar.r = tostring(v) .. "/" .. tostring(left)
elseif op == "lookup_named" then local v, left = avi.vs.table_lookup("tbl", "k"); avi.vs.reqvar.r = tostring(v) .. "/" .. tostring(left)
elseif op == "lookup_named4" then local v, left = avi.vs.table_lookup("tbl", "k4", 0); avi.vs.reqvar.r = tostring(v) .. "/" .. tostring(left)
elseif op == "lookup_s" then avi.vs.reqvar.r = tostring(avi.vs.table_lookup("s", 0))
elseif op == "refresh" then avi.vs.reqvar.r = avi.vs.table_refresh("k", 100)
elseif op == "remove" then avi.vs.table_remove("k")
elseif op == "remove_named" then avi.vs.table_remove("tbl", "k")
end`))
	env.Clock = clock.Now
	e := NewEngine(env)
	do := func(op string) string {
		t.Helper()
		txn := newTxn("/?op=" + op)
		if err := e.Run(context.Background(), spec.EvtHTTPReq, txn); err != nil {
			t.Fatal(err)
		}
		return lvString(txn.reqvars["r"])
	}
	steps := []struct {
		op   string
		skip time.Duration
		want string
	}{
		{"lookup", 0, "nil/nil"},
		{"insert", 0, "true"},
		{"lookup0", 0, "v1/300"}, // default lifetime 300 s, not extended
		{"insert2", 0, "true"},   // does not overwrite a live key
		{"lookup0", 0, "v1/300"},
		{"lookup", 100 * time.Second, "v1/500"}, // 200 left + 300
		{"refresh", 0, "true"},
		{"lookup0", 0, "v1/600"},
		{"insert_named", 0, "true"},
		{"lookup_named", 0, "named/600"},
		{"insert_named4", 0, "true"},
		{"lookup_named4", 0, "4/20"},
		{"remove", 0, ""},
		{"lookup0", 0, "nil/nil"},
		{"lookup_named", 0, "named/900"}, // other tables untouched
		{"remove_named", 0, ""},
		{"lookup_named", 0, "nil/nil"},
		{"insert_short", 0, "true"},
		{"lookup_s", 9 * time.Second, "x"},
		{"lookup_s", 2 * time.Second, "nil"}, // expired
		{"insert", 0, "true"},
		{"lookup0", 301 * time.Second, "nil/nil"},
		{"insert2", 0, "true"}, // expired key: a new value
		{"lookup0", 0, "v2/300"},
	}
	for i, s := range steps {
		clock.Add(s.skip)
		if got := do(s.op); got != s.want {
			t.Fatalf("step %d %s: %q, want %q", i, s.op, got, s.want)
		}
	}
}

func TestTableCap(t *testing.T) {
	ts := newTables()
	now := time.Unix(0, 0)
	for i := range MaxTableEntries {
		if !ts.insert("", itoa(i+1), "v", time.Second, now) {
			t.Fatalf("insert %d refused", i)
		}
	}
	if ts.insert("", "over", "v", time.Second, now) {
		t.Fatal("insert past the cap accepted")
	}
	if !ts.insert("", "over", "v", time.Second, now.Add(2*time.Second)) {
		t.Fatal("insert refused after the entries expired")
	}
}

func TestPool(t *testing.T) {
	txn := newTxn("/")
	run(t, spec.EvtHTTPReq, eqHelper+`
local up, total = avi.pool.get_servers("web"); eq(up, 1); eq(total, 2)
eq(avi.pool.get_server_status("web", "10.0.0.1", "80"), 1)
eq(avi.pool.get_server_status("web", "10.0.0.2", 80), 0)
avi.pool.select("alt", "10.0.1.1", 8080)`, txn)
	if txn.Pool != "alt" || txn.Server != "10.0.1.1" || txn.Port != 8080 {
		t.Errorf("selection %q %q %d", txn.Pool, txn.Server, txn.Port)
	}
	for _, src := range []string{
		`local p = "nope"; avi.pool.select(p)`,           // not in pool_refs
		`local p = "web"; avi.pool.select(p, "1.1.1.1")`, // no such server
	} {
		if err := runErr(t, spec.EvtHTTPReq, src, newTxn("/")); err == nil {
			t.Errorf("%s: no error", src)
		}
	}
	// A pool in the refs that the proxy does not know.
	s := mustSet(t, "P", spec.DataScriptSet{PoolRefs: []string{"ghost"}, DataScript: []spec.DataScript{{Evt: spec.EvtHTTPReq, Script: `avi.pool.select("ghost")`}}})
	err := NewEngine(testEnv(t, s)).Run(context.Background(), spec.EvtHTTPReq, newTxn("/"))
	if se := asScriptError(t, err); !strings.Contains(se.Err, `pool "ghost" does not exist`) {
		t.Errorf("err = %v", se.Err)
	}
}

func TestGroups(t *testing.T) {
	runCases(t, []luaCase{
		{name: "contains shortest", src: `local v, m = avi.stringgroup.contains("sg", "xxABCdef"); eq(m, true); eq(v, "a")`},
		{name: "contains_CASE", src: `local v, m = avi.stringgroup.contains_CASE("sg", "XXABC"); eq(m, false); eq(v, nil)`},
		{name: "beginswith", src: `local v, m = avi.stringgroup.beginswith("sg", "abcdef"); eq(v, "a"); eq(m, true)`},
		{name: "endswith", src: `local v, m = avi.stringgroup.endswith("sg", "/x/index.PHP"); eq(v, ".php"); eq(m, true); v, m = avi.stringgroup.endswith_CASE("sg", "/x/index.PHP"); eq(m, false)`},
		{name: "equals", src: `eq(select(2, avi.stringgroup.equals("sg", "AB")), true); eq(select(2, avi.stringgroup.equals_CASE("sg", "AB")), false)`},
		{name: "key value group gives the value", src: `local v, m = avi.stringgroup.equals("kv", "ALICE"); eq(v, "admin"); eq(m, true); v = avi.stringgroup.beginswith_CASE("kv", "Bobby"); eq(v, "user")`},
		{name: "group not in refs", src: `local g = "other"; eq(pcall(avi.stringgroup.equals, g, "x"), false)`},
		{name: "ipgroup", src: `
eq(avi.ipgroup.contains("ips", "192.0.2.1"), true)
eq(avi.ipgroup.contains("ips", "192.0.2.2"), false)
eq(avi.ipgroup.contains("ips", "10.9.8.7"), true)
eq(avi.ipgroup.contains("ips", "172.16.0.15"), true)
eq(avi.ipgroup.contains("ips", "172.16.0.21"), false)
eq(avi.ipgroup.contains("ips", "2001:db8::1"), true)
eq(avi.ipgroup.contains("ips", "2001:db8:1::99"), true)
eq(avi.ipgroup.contains("ips", "2001:db8:2::1"), false)
eq(avi.ipgroup.contains("ips", "::ffff:10.0.0.1"), true)
eq(avi.ipgroup.contains("ips", "junk"), false)`},
	})
}

func TestUtilsAndStrings(t *testing.T) {
	runCases(t, []luaCase{
		{name: "base64", src: `eq(avi.utils.base64_encode("hello"), "aGVsbG8="); eq(avi.utils.base64_decode("aGVsbG8="), "hello"); eq(avi.utils.base64_decode("!!"), nil)`},
		{name: "hashes are hex", src: `eq(avi.utils.md5_hash("abc"), "900150983cd24fb0d6963f7d28e17f72"); eq(avi.utils.sha1_hash("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d")`},
		{name: "uri_decode", src: `eq(avi.utils.uri_decode("a%20b%2F"), "a b/")`},
		{name: "rand_bytes", src: `eq(#avi.utils.rand_bytes(16), 16); eq(pcall(avi.utils.rand_bytes, 1e6), false)`},
		{name: "string extras", src: `eq(string.beginswith("hello", "he"), true); eq(("hello"):endswith("lo"), true); eq(string.contains("hello", "xx"), false)`},
		{name: "string library works", src: `eq(string.format("%02X", 10), "0A"); eq(("a,b"):gsub(",", ";"), "a;b"); eq(select(2, ("aaa"):gsub("a", "b")), 3); eq(("x=1"):match("x=(%d)"), "1"); eq(string.rep("ab", 3), "ababab"); eq(table.concat({1, 2}, "-"), "1-2")`},
		{name: "gsub forms", src: `eq(("hello world"):gsub("(%w+)", "<%1>"), "<hello> <world>"); eq(("abc"):gsub("%w", {a = "1", b = false}), "1bc"); eq(("abc"):gsub("%w", function(c) if c == "c" then return "C" end end), "abC"); eq(("abc"):gsub("", "-"), "-a-b-c-"); eq(("abc"):gsub("b", "%%"), "a%c")`},
		{name: "os subset", src: `eq(type(os.time()), "number"); eq(type(os.clock()), "number"); eq(type(os.date("%Y")), "string")`},
	})
}

func TestSSL(t *testing.T) {
	runCases(t, []luaCase{
		{name: "plain HTTP", src: `eq(avi.ssl.protocol(), "unknown"); eq(avi.ssl.cipher(), nil); eq(avi.ssl.server_name(), nil); eq(avi.ssl.client_cert(), nil)`},
		{name: "TLS", txn: func() *Txn {
			x := newTxn("/")
			x.Secure = true
			x.TLS = &TLSInfo{
				Protocol: "TLSv1.3", Cipher: "TLS_AES_128_GCM_SHA256", CipherDetail: "TLS_AES_128_GCM_SHA256 TLSv1.3 Kx=any Au=any Enc=AESGCM(128) Mac=AEAD",
				ServerName: "sni.example", ClientCertPEM: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
				ClientCertSubject: "/C=US/CN=bob", ClientCertIssuer: "/CN=ca", ClientCertSerial: "0A", ClientCertFingerprint: "abcd", ClientCertCommonName: "bob",
			}
			return x
		}, src: `eq(avi.ssl.protocol(), "TLSv1.3"); eq(avi.ssl.cipher(), "TLS_AES_128_GCM_SHA256"); eq(avi.ssl.cipher(true):match("Kx=(%w+)"), "any")
eq(avi.ssl.server_name(), "sni.example")
eq(avi.ssl.client_cert(), "-----BEGIN CERTIFICATE-----\n\tAAAA\n\t-----END CERTIFICATE-----")
local s, i = avi.ssl.client_cert(avi.CLIENT_CERT_SUBJECT, avi.CLIENT_CERT_ISSUER); eq(s, "/C=US/CN=bob"); eq(i, "/CN=ca")
eq(avi.ssl.client_cert("avi.CLIENT_CERT_SERIAL"), "0A"); eq(avi.ssl.client_cert(avi.CLIENT_CERT_FINGERPRINT), "abcd")
eq(avi.http.get_userid(), "bob")`},
	})
}

func TestVigilEvent(t *testing.T) {
	var got []map[string]any
	env := testEnv(t, script(t, spec.EvtHTTPReq, eqHelper+`
eq(vigil.event("BLOCKED_CLIENT", {ip = avi.vs.client_ip(), n = 2, tags = {"a", "b"}}), true)
eq(pcall(vigil.event, "bad-id", {}), false)
local ok, why = vigil.event("BIG", {s = string.rep("x", 20000)}); eq(ok, false)
ok, why = vigil.event("SECOND"); eq(ok, false); eq(why, "event rate exceeded")`))
	env.EventRate, env.EventBurst = 1, 1
	env.Publish = func(id string, d map[string]any) error {
		got = append(got, map[string]any{"id": id, "d": d})
		return nil
	}
	if err := NewEngine(env).Run(context.Background(), spec.EvtHTTPReq, newTxn("/")); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0]["id"] != "BLOCKED_CLIENT" {
		t.Fatalf("published %v", got)
	}
	d := got[0]["d"].(map[string]any)
	if d["ip"] != "198.51.100.7" || d["n"] != 2.0 || len(d["tags"].([]any)) != 2 {
		t.Errorf("details %v", d)
	}
}
