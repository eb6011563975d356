package datascript

import (
	"context"
	"testing"
	"time"

	"github.com/vigilhq/vigil/dataplane/spec"
)

// BenchmarkRunSecure is the proxy's hot path: the Avi doc's example on a
// request that does not match, and on one that does (a local 403).
func BenchmarkRunSecure(b *testing.B) {
	e := NewEngine(testEnv(b, script(b, spec.EvtHTTPReq, `if avi.http.uri == "/secure/" then avi.http.send(403) end`)))
	ctx := context.Background()
	for _, path := range []string{"/index.html", "/secure/"} {
		b.Run(path, func(b *testing.B) {
			txn := newTxn(path, "Host", "www.example.com")
			req := txn.Req
			b.ReportAllocs()
			for b.Loop() {
				txn.Reset()
				txn.Req = req
				if err := e.Run(ctx, spec.EvtHTTPReq, txn); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkInstructions measures how many simple VM instructions a state
// runs per millisecond under the budget check (a numeric for loop is about
// one FORLOOP per iteration).
func BenchmarkInstructions(b *testing.B) {
	const n = 1_000_000
	env := testEnv(b, script(b, spec.EvtHTTPReq, `local x = 0; for i = 1, 1000000 do x = x + i end`))
	env.Budget = time.Minute
	e := NewEngine(env)
	ctx := context.Background()
	start := time.Now()
	for b.Loop() {
		if err := e.Run(ctx, spec.EvtHTTPReq, newTxn("/")); err != nil {
			b.Fatal(err)
		}
	}
	per := time.Since(start) / time.Duration(b.N)
	b.ReportMetric(float64(2*n)/float64(per.Milliseconds()+1), "instr/ms")
}

func TestRunSecureAllocs(t *testing.T) {
	e := NewEngine(testEnv(t, script(t, spec.EvtHTTPReq, `if avi.http.uri == "/secure/" then avi.http.send(403) end`)))
	for _, path := range []string{"/index.html", "/secure/"} {
		txn := newTxn(path)
		req := txn.Req
		n := testing.AllocsPerRun(200, func() {
			txn.Reset()
			txn.Req = req
			if err := e.Run(context.Background(), spec.EvtHTTPReq, txn); err != nil {
				t.Fatal(err)
			}
		})
		if n > 2 {
			t.Errorf("%s: %v allocations a run, want at most 2", path, n)
		}
	}
}
