package datascript

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/dataplane/httpmsg"
	"github.com/vigilhq/vigil/dataplane/spec"
)

// fakePools is a PoolView of fixed pools: pool → server "ip:port" → up.
type fakePools map[string]map[string]bool

func (f fakePools) Exists(pool string) bool { _, ok := f[pool]; return ok }

func (f fakePools) Servers(pool string) (up, total int) {
	for _, u := range f[pool] {
		total++
		if u {
			up++
		}
	}
	return up, total
}

func (f fakePools) ServerStatus(pool, server string, port int) (bool, bool) {
	for k, u := range f[pool] {
		if k == server || port == 0 && len(k) > len(server) && k[:len(server)+1] == server+":" ||
			k == server+":"+itoa(port) {
			return u, true
		}
	}
	return false, false
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// mustSet compiles a set from event → script.
func mustSet(t testing.TB, name string, ds spec.DataScriptSet) *Set {
	t.Helper()
	s, err := Compile(name, &ds)
	if err != nil {
		t.Fatalf("compile %s: %v", name, err)
	}
	return s
}

// script is a set with one REQ chunk and the usual refs.
func script(t testing.TB, evt, src string) *Set {
	t.Helper()
	return mustSet(t, "S", spec.DataScriptSet{
		DataScript:      []spec.DataScript{{Evt: evt, Script: src}},
		PoolRefs:        []string{"web", "alt"},
		StringGroupRefs: []string{"sg", "kv"},
		IPGroupRefs:     []string{"ips"},
		RateLimiters:    []spec.RateLimiter{{Name: "rl", Count: 2, Period: 1}},
	})
}

func testEnv(t testing.TB, sets ...*Set) Env {
	t.Helper()
	ips, err := NewIPGroup(&spec.IPGroup{
		Addrs:    []string{"192.0.2.1", "2001:db8::1"},
		Prefixes: []string{"10.0.0.0/8", "2001:db8:1::/48"},
		Ranges:   []spec.IPRange{{Begin: "172.16.0.10", End: "172.16.0.20"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return Env{
		VS:   "vs1",
		Sets: sets,
		StringGroups: map[string]*StringGroup{
			"sg": NewStringGroup(&spec.StringGroup{KV: []spec.KV{{Key: "abc"}, {Key: "a"}, {Key: "ab"}, {Key: ".php"}}}),
			"kv": NewStringGroup(&spec.StringGroup{KV: []spec.KV{{Key: "alice", Value: "admin"}, {Key: "Bob", Value: "user"}}}),
		},
		IPGroups: map[string]*IPGroup{"ips": ips},
		Pools: fakePools{
			"web": {"10.0.0.1:80": true, "10.0.0.2:80": false},
			"alt": {"10.0.1.1:8080": true},
		},
		OpenConns: func() int { return 7 },
	}
}

// newTxn is a GET of target with headers (name, value pairs).
func newTxn(target string, headers ...string) *Txn {
	r := &httpmsg.Request{Method: []byte("GET"), Target: []byte(target), Major: 1, Minor: 1}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Fields.Add(headers[i], headers[i+1])
	}
	return &Txn{
		Req: r, ClientIP: "198.51.100.7", ClientPort: "54321", VSIP: "203.0.113.1", VSPort: "443",
		RequestID: "req-1",
	}
}

// run runs src for evt on t and fails on a script error.
func run(t *testing.T, evt, src string, txn *Txn) {
	t.Helper()
	e := NewEngine(testEnv(t, script(t, evt, src)))
	if err := e.Run(context.Background(), evt, txn); err != nil {
		t.Fatalf("run: %v", err)
	}
}

// runErr runs src and returns its error.
func runErr(t *testing.T, evt, src string, txn *Txn) error {
	t.Helper()
	e := NewEngine(testEnv(t, script(t, evt, src)))
	return e.Run(context.Background(), evt, txn)
}

func asScriptError(t *testing.T, err error) *ScriptError {
	t.Helper()
	var se *ScriptError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a *ScriptError", err)
	}
	return se
}

// header is the first value of name in f.
func header(f httpmsg.Fields, name string) string {
	v, _ := f.Get(name)
	return string(v)
}
