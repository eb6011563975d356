package datascript

import (
	"context"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/vigilhq/vigil/dataplane/spec"
)

// searchCases runs string.find and string.match over subjects, patterns
// and start positions and returns every result, in a form two states can
// compare.
const searchCases = `
local subjects = {
  string.rep("x", 100) .. '{"is_admin" : true}' .. string.rep("y", 50),
  '{"name": "bob", "tags": ["a", "b"], "n": 12345, "is_admin": false}' .. string.rep(" ", 60),
  string.rep("ab", 80),
  string.rep("a", 70) .. "%d.b(c)" .. string.rep("a", 70),
  string.rep("ab", 40) .. "$",
  "abc", "",
}
local patterns = {
  '"is_admin"%s*:', '"is_admin"%s*:%s*(%a+)', "ab", "aba", "b$", "ab$", "abx?", "ab*", "ab+",
  "a-b", "ba-", "%%d", "%%d%.b%(c%)", "()ab()", "xy", "x+y", "xy?", '"(%w+)"', "%w+", "[ab]+",
  "^ab", "b(a)(b)", 'tags": %[', "ab[", "ab(%", "a%", "%bab", "aa%a", "b%$", "$", "a.b", "",
  "b(a", "ba)", "yy(y*)$",
}
local inits = {1, 0, -1, -10, -1000, 3, 64, 71, 200, 1000}
local function pack(...) return select("#", ...), {...} end
local all = {}
for si, s in ipairs(subjects) do
  local out = {}
  for _, p in ipairs(patterns) do
    for _, i in ipairs(inits) do
      for _, f in ipairs({"find", "match"}) do
        local n, r = pack(pcall(string[f], s, p, i))
        local line = {si, f, p, i, n}
        for k = 1, n do line[#line + 1] = tostring(r[k]) end
        out[#out + 1] = table.concat(line, "|")
      end
      if i <= #s + 1 then -- gopher-lua's plain find fails past the end
        local n, r = pack(string.find(s, p, i, true))
        out[#out + 1] = table.concat({si, "plain", p, i, n, tostring(r[1]), tostring(r[2])}, "|")
      end
    end
  end
  all[si] = table.concat(out, "\n")
end
`

// TestStringSearchAsGopherLua: the sandbox's string.find and string.match
// give what gopher-lua's own give, value for value, errors included.
func TestStringSearchAsGopherLua(t *testing.T) {
	plain := lua.NewState()
	defer plain.Close()
	if err := plain.DoString(searchCases + `return table.concat(all, "\n")`); err != nil {
		t.Fatal(err)
	}
	want := plain.Get(-1).String()

	env := testEnv(t, script(t, spec.EvtHTTPReq, searchCases+`avi.http.response(200, {}, table.concat(all, "\n"))`))
	env.Budget = time.Minute
	txn := newTxn("/")
	if err := NewEngine(env).Run(context.Background(), spec.EvtHTTPReq, txn); err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(string(txn.Action.Body), `[string "S"]`, "<string>")
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	if len(wl) != len(gl) {
		t.Fatalf("%d results, want %d", len(gl), len(wl))
	}
	bad := 0
	for i := range wl {
		if wl[i] != gl[i] && bad < 10 {
			t.Errorf("got  %s\nwant %s", gl[i], wl[i])
			bad++
		}
	}
	if !strings.Contains(want, `match|"is_admin"%s*:%s*(%a+)|1|2|true|true`) {
		t.Errorf("the cases do not find the field as expected:\n%.600s", want)
	}
	t.Logf("%d results compared", len(wl))
}

// TestStringSearchLongSubject: searching a 1 MiB body for a pattern with
// a literal head takes a fraction of the default budget (gopher-lua's
// matcher alone takes about half a second). A plain find from past the
// end finds nothing, as in Lua, where gopher-lua's fails.
func TestStringSearchLongSubject(t *testing.T) {
	e := NewEngine(testEnv(t, script(t, spec.EvtHTTPReq, `
local body = string.rep("x", 1048576 - 40) .. '{"is_admin" : true}'
local at = string.find(body, '"is_admin"%s*:')
if at ~= 1048576 - 40 + 2 then error("found at " .. tostring(at)) end
if body:match('"is_admin"%s*:%s*(%a+)') ~= "true" then error("no capture") end
if body:find('"is_root"%s*:') ~= nil then error("found what is not there") end
if ("abc"):find("b", 5, true) ~= nil then error("plain find past the end") end
avi.http.send(403)`)))
	txn := newTxn("/")
	if err := e.Run(context.Background(), spec.EvtHTTPReq, txn); err != nil {
		t.Fatal(err)
	}
	if txn.Action.Status != 403 {
		t.Fatalf("status %d", txn.Action.Status)
	}
}
