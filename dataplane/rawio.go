package dataplane

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// rawIO reads and writes a TCP connection's non-blocking socket with raw
// system calls, waiting in the runtime's network poller as net.Conn does
// when the socket is not ready.
//
// Why: a read or write through net.Conn tells the scheduler it is in a
// system call. On loopback a write runs the receiver's TCP path and wakes
// the receiver, which often preempts the writer on its CPU, so the call
// outlasts the 20 µs after which the runtime's monitor takes the P away
// from the thread and wakes another: a cascade of thread wake-ups and
// context switches per request on a busy machine. These calls never
// block (the socket is non-blocking), so the P stays with its thread, as
// it would for a goroutine preempted in Go code.
//
// Deadlines, Close and the poller behave as for the connection itself.
// A rawIO serves one reader and one writer at a time (bufio's rules).
type rawIO struct {
	rc syscall.RawConn

	rp      []byte
	rn      int
	rerr    error
	readFn  func(fd uintptr) bool
	wp      []byte
	wn      int
	werr    error
	writeFn func(fd uintptr) bool
}

// newRawIO returns raw I/O for c, or nil when c is not a TCP connection.
func newRawIO(c net.Conn) *rawIO {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	r := &rawIO{rc: rc}
	r.readFn = r.read
	r.writeFn = r.write
	return r
}

// rawOr returns raw I/O for c when it is a TCP connection, else c.
func rawOr(c net.Conn) io.ReadWriter {
	if r := newRawIO(c); r != nil {
		return r
	}
	return c
}

func (r *rawIO) read(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&r.rp[0])), uintptr(len(r.rp)))
		switch e {
		case 0:
			r.rn = int(n)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			r.rerr = os.NewSyscallError("read", e)
			return true
		}
	}
}

func (r *rawIO) write(fd uintptr) bool {
	for len(r.wp) > 0 {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&r.wp[0])), uintptr(len(r.wp)))
		switch e {
		case 0:
			r.wn += int(n)
			r.wp = r.wp[n:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			r.werr = os.NewSyscallError("write", e)
			return true
		}
	}
	return true
}

// Read reads into p; io.EOF when the peer has closed its side.
func (r *rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.rp, r.rn, r.rerr = p, 0, nil
	err := r.rc.Read(r.readFn)
	n := r.rn
	if err == nil {
		err = r.rerr
	}
	r.rp, r.rerr = nil, nil
	if err == nil && n == 0 {
		err = io.EOF
	}
	return n, err
}

// Write writes all of p unless an error stops it.
func (r *rawIO) Write(p []byte) (int, error) {
	r.wp, r.wn, r.werr = p, 0, nil
	err := r.rc.Write(r.writeFn)
	n := r.wn
	if err == nil {
		err = r.werr
	}
	r.wp, r.werr = nil, nil
	return n, err
}
