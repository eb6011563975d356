package dataplane

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilhq/vigil/dataplane/spec"
)

// Health is what the proxy asks a server's health monitors: whether it
// may take new requests.
type Health interface {
	Up() bool
}

// backend is one server of a pool as the proxy uses it: its address, its
// idle keep-alive connections and its counters. A backend outlives config
// changes that keep its pool and address, so that its idle connections
// and counters carry over.
type backend struct {
	pool    string
	ip      string
	port    int
	portStr string
	addr    string // ip:port

	settings atomic.Pointer[backendSettings]

	active   atomic.Int64 // requests in flight
	open     atomic.Int64 // connections open
	requests atomic.Uint64
	latency  latencyBuckets

	mu   sync.Mutex
	idle []*upConn
}

// backendSettings are a backend's connection settings from its pool.
type backendSettings struct {
	connectTimeout time.Duration
	maxIdle        int
	maxConns       int
}

// errTooManyConns is returned when a server is at its pool's
// max_conns_per_server.
var errTooManyConns = errors.New("server at its connection limit")

func newBackend(pool string, ip string, port int) *backend {
	return &backend{
		pool: pool, ip: ip, port: port, portStr: strconv.Itoa(port),
		addr: net.JoinHostPort(ip, strconv.Itoa(port)),
	}
}

// member is a backend as one config snapshot has it in its pool.
type member struct {
	*backend
	hostname string
	ratio    int
	enabled  bool
	health   Health // nil: always up
}

// up reports whether the server takes new requests.
func (m *member) up() bool {
	return m.enabled && (m.health == nil || m.health.Up())
}

// upConn is a connection to a server.
type upConn struct {
	net.Conn
	b      *backend
	br     *bufio.Reader
	w      io.Writer
	idleAt time.Time
	reused bool
	rd, wd deadline
}

// Write writes to the server through the connection's raw I/O.
func (c *upConn) Write(p []byte) (int, error) { return c.w.Write(p) }

// idleLimit is how long a connection may sit idle before the proxy stops
// trusting the server to keep it: servers close idle connections after
// their own timeout (nginx 75s, Apache 5s), so anything older is dropped
// rather than risked.
const idleLimit = 4 * time.Second

// get returns an idle connection to the backend or a new one.
func (b *backend) get(ctx context.Context) (*upConn, error) {
	now := time.Now()
	b.mu.Lock()
	for n := len(b.idle); n > 0; n = len(b.idle) {
		c := b.idle[n-1]
		b.idle[n-1] = nil
		b.idle = b.idle[:n-1]
		if now.Sub(c.idleAt) < idleLimit {
			b.mu.Unlock()
			c.reused = true
			return c, nil
		}
		b.mu.Unlock()
		c.close()
		b.mu.Lock()
	}
	b.mu.Unlock()
	return b.dial(ctx)
}

func (b *backend) dial(ctx context.Context) (*upConn, error) {
	s := b.settings.Load()
	if s.maxConns > 0 && b.open.Load() >= int64(s.maxConns) {
		return nil, errTooManyConns
	}
	d := net.Dialer{Timeout: s.connectTimeout, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", b.addr)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", b.addr, err)
	}
	b.open.Add(1)
	rw := rawOr(c)
	uc := &upConn{Conn: c, b: b, br: bufio.NewReaderSize(rw, 16<<10), w: rw}
	uc.rd.set, uc.wd.set = c.SetReadDeadline, c.SetWriteDeadline
	return uc, nil
}

// put gives a connection whose last response was read whole back to the
// backend for reuse.
func (b *backend) put(c *upConn) {
	s := b.settings.Load()
	c.idleAt = time.Now()
	b.mu.Lock()
	if len(b.idle) < s.maxIdle {
		b.idle = append(b.idle, c)
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	c.close()
}

// closeIdle closes the backend's idle connections (when it leaves the
// config).
func (b *backend) closeIdle() {
	b.mu.Lock()
	idle := b.idle
	b.idle = nil
	b.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
}

func (c *upConn) close() {
	_ = c.Close()
	c.b.open.Add(-1)
}

// poolRuntime is a pool as one config snapshot has it.
type poolRuntime struct {
	name    string
	spec    *spec.Pool
	members []*member
	bal     balancer
	timeout time.Duration // server (idle) timeout
	hashKey string        // spec.Hash*
}

// pick chooses an up server for a request; key is the consistent-hash key
// (ignored by the other algorithms). It returns nil when none is up.
func (p *poolRuntime) pick(key []byte) *member {
	return p.bal.pick(key)
}

// findServer returns the pool's server whose IP or hostname is server and
// whose port is port (0: any), or nil.
func (p *poolRuntime) findServer(server string, port int) *member {
	for _, m := range p.members {
		if (m.ip == server || m.hostname == server) && (port == 0 || m.port == port) {
			return m
		}
	}
	return nil
}

// counts returns the pool's up and total servers.
func (p *poolRuntime) counts() (up, total int) {
	for _, m := range p.members {
		if m.up() {
			up++
		}
	}
	return up, len(p.members)
}

// deadline keeps one of a connection's deadlines and moves it only when
// the new one would be later than the one set by more than a sixteenth of
// its timeout, or earlier: a busy connection then touches the runtime's
// timers about once per sixteenth of the timeout instead of on every
// request, and a timeout ends a gap at most 1/16 of its length early.
type deadline struct {
	at  time.Time
	set func(time.Time) error
}

// after sets the deadline to about now + timeout.
func (d *deadline) after(now time.Time, timeout time.Duration) {
	want := now.Add(timeout)
	if ahead := want.Sub(d.at); ahead >= 0 && ahead <= timeout/16 {
		return
	}
	d.at = want
	_ = d.set(want)
}

// clear removes the deadline.
func (d *deadline) clear() {
	d.at = time.Time{}
	_ = d.set(time.Time{})
}
