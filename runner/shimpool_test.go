package runner

import (
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestShimPool(t *testing.T) {
	if os.Geteuid() != 0 || shimBin == "" {
		t.Skip("the sandbox needs root and the vigil binary")
	}
	p := newShimPool(shimBin, 1, slog.New(slog.DiscardHandler))
	defer p.close()
	waitIdle := func(network bool) *Prestarted {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			p.mu.Lock()
			n := len(p.idle[network])
			var sh *Prestarted
			if n > 0 {
				sh = p.idle[network][n-1]
			}
			p.mu.Unlock()
			if sh != nil {
				return sh
			}
			if time.Now().After(deadline) {
				t.Fatal("the pool did not fill")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// A shim that died while it waited is never handed out.
	dead := waitIdle(true)
	_ = dead.Cmd.Process.Signal(syscall.SIGKILL)
	time.Sleep(50 * time.Millisecond)
	sh, err := p.take(true)
	if err != nil {
		t.Fatal(err)
	}
	if sh == dead {
		t.Fatal("took a dead shim")
	}
	// A spec must match the shim's network mode.
	if _, err := sh.Send(SandboxSpec{Argv: []string{"/bin/true"}, Network: false}); err == nil || !strings.Contains(err.Error(), "network") {
		t.Fatalf("network mismatch: %v", err)
	}
	send, err := sh.Send(SandboxSpec{Argv: []string{"/bin/echo", "pooled"}, Network: true, UID: -1, GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan string, 1)
	go func() {
		b := make([]byte, 64)
		n, _ := sh.Stdout.Read(b)
		out <- string(b[:n])
	}()
	st := send()
	if err := sh.Cmd.Wait(); err != nil || st.Error != "" || st.Started == nil {
		t.Fatalf("run: %v %+v", err, st)
	}
	if got := <-out; got != "pooled\n" {
		t.Fatalf("stdout %q", got)
	}
	// The pool refills itself.
	waitIdle(true)
	waitIdle(false)
}
