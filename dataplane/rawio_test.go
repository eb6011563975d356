package dataplane

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	a, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b = <-accepted
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestRawIOOnlyForTCP(t *testing.T) {
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if newRawIO(p1) != nil {
		t.Fatal("raw I/O for a pipe")
	}
	if rawOr(p1) != io.ReadWriter(p1) {
		t.Fatal("rawOr(pipe) is not the pipe")
	}
	a, _ := tcpPair(t)
	if _, ok := rawOr(a).(*rawIO); !ok {
		t.Fatal("no raw I/O for a TCP connection")
	}
}

// TestRawIOLargeWrite: a write larger than the socket buffers waits for
// the reader (EAGAIN, then the poller) and delivers every byte in order.
func TestRawIOLargeWrite(t *testing.T) {
	a, b := tcpPair(t)
	w, r := newRawIO(a), newRawIO(b)
	data := make([]byte, 16<<20)
	_, _ = rand.Read(data)
	done := make(chan error, 1)
	go func() {
		n, err := w.Write(data)
		if err == nil && n != len(data) {
			err = errors.New("short write")
		}
		done <- err
	}()
	got := make([]byte, 0, len(data))
	buf := make([]byte, 7919) // odd-sized reads
	for len(got) < len(data) {
		time.Sleep(time.Microsecond) // a slow reader
		n, err := r.Read(buf)
		if err != nil {
			t.Fatalf("read after %d bytes: %v", len(got), err)
		}
		got = append(got, buf[:n]...)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("bytes differ")
	}
}

// TestRawIOEndsAndErrors: EOF when the peer closes, the connection's
// deadlines as os.ErrDeadlineExceeded, net.ErrClosed when the connection
// is closed under a waiting read, and a reset as an error.
func TestRawIOEndsAndErrors(t *testing.T) {
	t.Run("eof", func(t *testing.T) {
		a, b := tcpPair(t)
		r := newRawIO(a)
		_, _ = b.Write([]byte("last"))
		b.Close()
		got, err := io.ReadAll(r)
		if err != nil || string(got) != "last" {
			t.Fatalf("ReadAll = %q, %v", got, err)
		}
		if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF { //nolint:errorlint // io.Reader's callers compare with io.EOF itself
			t.Fatalf("read after EOF = %d, %v", n, err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		a, _ := tcpPair(t)
		r := newRawIO(a)
		_ = a.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		start := time.Now()
		_, err := r.Read(make([]byte, 1))
		var ne net.Error
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("read past the deadline: %v", err)
		}
		if d := time.Since(start); d < 40*time.Millisecond || d > 5*time.Second {
			t.Fatalf("the read waited %v", d)
		}
		// A write blocked on a full buffer ends at its deadline too.
		_ = a.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := newRawIO(a).Write(make([]byte, 64<<20)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write past the deadline: %v", err)
		}
	})
	t.Run("closed while waiting", func(t *testing.T) {
		a, _ := tcpPair(t)
		r := newRawIO(a)
		errc := make(chan error, 1)
		go func() {
			_, err := r.Read(make([]byte, 1))
			errc <- err
		}()
		time.Sleep(20 * time.Millisecond)
		a.Close()
		select {
		case err := <-errc:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("read on a closed connection: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the read did not end when the connection closed")
		}
	})
	t.Run("reset", func(t *testing.T) {
		a, b := tcpPair(t)
		// Unread data at close makes the kernel send a reset.
		_ = b.(*net.TCPConn).SetLinger(0)
		b.Close()
		w := newRawIO(a)
		var err error
		deadline := time.Now().Add(5 * time.Second)
		for err == nil && time.Now().Before(deadline) {
			_, err = w.Write([]byte("after the reset"))
			time.Sleep(time.Millisecond)
		}
		if err == nil {
			t.Fatal("writes to a reset connection kept succeeding")
		}
		var se *os.SyscallError
		if !errors.As(err, &se) {
			t.Fatalf("write error %T %v, want a system call error", err, err)
		}
	})
}
