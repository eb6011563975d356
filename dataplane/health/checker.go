package health

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/dataplane/spec"
	"github.com/vigilhq/vigil/events"
)

// Defaults of Options.
const (
	DefaultSource         = "/vigil/dataplane/health"
	DefaultPublishTimeout = 5 * time.Second
)

// queueSize bounds the events waiting to be published.
const queueSize = 1024

// maxJitter bounds the delay of a probe's first check.
const maxJitter = 2 * time.Second

// Options configures a Checker. The zero value works: it checks, and
// publishes no events and registers no metrics.
type Options struct {
	// Publisher receives the events; nil publishes none. *events.Bus
	// is a Publisher.
	Publisher Publisher
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Clock gives the time of events; default time.Now.
	Clock func() time.Time
	// Source is the CloudEvents source of the events; default
	// DefaultSource.
	Source string
	// Dial opens the connections of checks; default a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Registerer, when set, gets vigil_health_checks_total and
	// vigil_server_up.
	Registerer prometheus.Registerer
	// OnChange, when set, is called with a pool's name after a check
	// changed the pool's up set. It runs on a check's goroutine, after
	// the new state is readable, and should return quickly.
	OnChange func(pool string)
	// PublishTimeout bounds one publish, and Stop's wait for the events
	// still queued; default DefaultPublishTimeout.
	PublishTimeout time.Duration
}

// PoolConfig is one pool as the Checker monitors it.
type PoolConfig struct {
	// Name is informational: the key of the map given to Set names the
	// pool.
	Name string
	// Pool gives the servers and, in HealthMonitors, the names of the
	// monitors.
	Pool *spec.Pool
	// Monitors are the pool's monitors resolved, in the order of
	// Pool.HealthMonitors, which names them.
	Monitors []*spec.HealthMonitor
	// VirtualServices are the virtual services whose default pool this
	// is: the first is the virtual_service of the pool's events, and each
	// gets VS_DOWN and VS_UP when the pool goes down and up.
	VirtualServices []string
}

// Checker runs the health monitors of pools. Its methods are safe for
// concurrent use.
type Checker struct {
	opts    Options
	log     *slog.Logger
	pub     Publisher
	now     func() time.Time
	source  string
	dial    dialFunc
	metrics *metrics
	errLog  rateLog

	queue     chan *events.Event
	pubDone   chan struct{}
	pubCancel context.CancelFunc
	wg        sync.WaitGroup
	stopOnce  sync.Once

	// view is what Up, ServerState and Servers read without locking.
	view atomic.Pointer[view]

	mu      sync.Mutex
	pools   map[string]*pool
	orphans map[serverKey]*ServerState // asked for before Set named them
	started bool
	stopped bool
	ctx     context.Context // of the checks, once started
	cancel  context.CancelFunc
}

// serverKey names a server of a pool.
type serverKey struct {
	pool, ip string
	port     int
}

// view is an immutable index of the read-side state.
type view struct {
	servers map[serverKey]*ServerState
	pools   map[string]*poolCount
}

// ServerState is a server's health as the proxy reads it on each request.
type ServerState struct {
	up atomic.Bool
}

// Up reports whether the server may take new requests. A nil
// ServerState is up.
func (s *ServerState) Up() bool { return s == nil || s.up.Load() }

// poolCount holds a pool's up and total servers as up<<32 | total.
type poolCount struct {
	v atomic.Uint64
}

func (p *poolCount) store(up, total int) { p.v.Store(uint64(up)<<32 | uint64(uint32(total))) }

func (p *poolCount) load() (up, total int) {
	v := p.v.Load()
	return int(v >> 32), int(uint32(v))
}

// pool is a monitored pool. Guarded by Checker.mu.
type pool struct {
	name    string
	vses    []string
	servers map[string]*server // by ip:port
	order   []*server          // in the config's order
	up      int                // enabled servers up
	total   int                // enabled servers
	down    bool               // none up, as last reported
	count   *poolCount
}

// server is one server of a pool. Guarded by Checker.mu.
type server struct {
	pool     *pool
	key      serverKey
	id       string // ip:port
	hostname string
	enabled  bool
	up       bool
	state    *ServerState
	probes   []*probe // one per monitor
}

// probe is one monitor of one server: its settings, state and goroutine.
// Guarded by Checker.mu, but for the fields the goroutine only reads.
type probe struct {
	srv        *server
	mon        *monitor
	addr, host string

	up      bool
	passes  int // in a row
	fails   int // in a row
	last    result
	avgMS   float64
	cancel  context.CancelFunc
	stopped bool
}

// New returns a Checker; Start begins its checks.
func New(opts Options) *Checker {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Source == "" {
		opts.Source = DefaultSource
	}
	if opts.PublishTimeout <= 0 {
		opts.PublishTimeout = DefaultPublishTimeout
	}
	c := &Checker{
		opts:    opts,
		log:     opts.Logger.With("component", "health"),
		pub:     opts.Publisher,
		now:     opts.Clock,
		source:  opts.Source,
		dial:    opts.Dial,
		queue:   make(chan *events.Event, queueSize),
		pubDone: make(chan struct{}),
		pools:   map[string]*pool{},
		orphans: map[serverKey]*ServerState{},
	}
	c.errLog.logger = c.log
	if c.dial == nil {
		c.dial = (&net.Dialer{}).DialContext
	}
	var err error
	if c.metrics, err = newMetrics(opts.Registerer); err != nil {
		c.log.Error("register metrics", "err", err)
	}
	c.view.Store(&view{servers: map[serverKey]*ServerState{}, pools: map[string]*poolCount{}})
	return c
}

// Start begins the checks of the pools Set gave, and of those it will
// give. Cancelling ctx ends the checks; Stop waits for them. Start after
// the first call, or after Stop, does nothing.
func (c *Checker) Start(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started || c.stopped {
		return
	}
	c.started = true
	c.ctx, c.cancel = context.WithCancel(ctx)
	// Publishing outlives ctx by up to PublishTimeout so that Stop can
	// flush the events of the last changes.
	pctx, pcancel := context.WithCancel(context.WithoutCancel(ctx))
	c.pubCancel = pcancel
	go c.publishLoop(pctx)
	for _, pl := range c.pools {
		for _, s := range pl.order {
			for _, p := range s.probes {
				c.startProbe(p)
			}
		}
	}
}

// Stop ends the checks, waits for them, and publishes the events still
// queued for up to PublishTimeout. It is idempotent.
func (c *Checker) Stop() {
	c.stopOnce.Do(func() {
		c.mu.Lock()
		c.stopped = true
		started := c.started
		if c.cancel != nil {
			c.cancel()
		}
		c.mu.Unlock()
		c.wg.Wait()
		if !started {
			return
		}
		close(c.queue)
		t := time.NewTimer(c.opts.PublishTimeout)
		defer t.Stop()
		select {
		case <-c.pubDone:
		case <-t.C:
			c.pubCancel()
			<-c.pubDone
		}
		c.pubCancel()
	})
}

// Set replaces the monitored pools; the map's keys name them. See the
// package documentation for what a change keeps. Set publishes no event
// and does not call OnChange.
func (c *Checker) Set(pools map[string]PoolConfig) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, pl := range c.pools {
		if _, ok := pools[name]; !ok {
			c.removePool(pl)
			delete(c.pools, name)
		}
	}
	for name, pc := range pools {
		pl := c.pools[name]
		if pl == nil {
			pl = &pool{name: name, servers: map[string]*server{}, count: &poolCount{}}
			c.pools[name] = pl
		}
		c.setPool(pl, pc)
	}
	clear(c.orphans)
	c.publishView()
}

// setPool applies pc to pl.
func (c *Checker) setPool(pl *pool, pc PoolConfig) {
	pl.vses = append([]string(nil), pc.VirtualServices...)
	mons := monitors(pc)
	seen := map[string]bool{}
	pl.order = pl.order[:0]
	if pc.Pool != nil {
		for i := range pc.Pool.Servers {
			cfg := &pc.Pool.Servers[i]
			port := pc.Pool.ServerPort(cfg)
			id := net.JoinHostPort(cfg.IP, strconv.Itoa(port))
			if seen[id] {
				c.log.Warn("server repeated in pool: ignored", "pool", pl.name, "server", id)
				continue
			}
			seen[id] = true
			s := pl.servers[id]
			if s == nil {
				key := serverKey{pool: pl.name, ip: cfg.IP, port: port}
				st := c.orphans[key]
				if st == nil {
					st = &ServerState{}
				}
				s = &server{pool: pl, key: key, id: id, state: st}
				pl.servers[id] = s
			}
			c.setServer(s, cfg, mons)
			pl.order = append(pl.order, s)
		}
	}
	for id, s := range pl.servers {
		if !seen[id] {
			c.removeServer(s)
			delete(pl.servers, id)
		}
	}
	pl.up, pl.total = 0, 0
	for _, s := range pl.order {
		if s.enabled {
			pl.total++
			if s.up {
				pl.up++
			}
		}
	}
	pl.down = pl.up == 0
	pl.count.store(pl.up, pl.total)
}

// monitors returns pc's monitors, named by Pool.HealthMonitors.
func monitors(pc PoolConfig) []*monitor {
	var out []*monitor
	for i, h := range pc.Monitors {
		if h == nil {
			continue
		}
		name := ""
		if pc.Pool != nil && i < len(pc.Pool.HealthMonitors) {
			name = pc.Pool.HealthMonitors[i]
		}
		if name == "" {
			name = fmt.Sprintf("monitor-%d", i)
		}
		out = append(out, newMonitor(name, h))
	}
	return out
}

// setServer applies a server's config and its pool's monitors to s,
// keeping the probes whose monitor and target are unchanged.
func (c *Checker) setServer(s *server, cfg *spec.Server, mons []*monitor) {
	s.hostname = cfg.Hostname
	if !cfg.IsEnabled() {
		for _, p := range s.probes {
			c.stopProbe(p)
		}
		s.probes = nil
		s.enabled = false
		s.setUp(false)
		c.metrics.forget(s.pool.name, s.id)
		return
	}
	if !s.enabled {
		// New, or enabled again: up until proven down.
		s.enabled = true
		s.setUp(true)
	}
	used := map[*probe]bool{}
	next := make([]*probe, 0, len(mons))
	for _, m := range mons {
		addr, host := m.target(s.key.ip, s.key.port, cfg.Hostname)
		var keep *probe
		for _, p := range s.probes {
			if !used[p] && p.mon.same(m) && p.addr == addr && p.host == host {
				keep = p
				break
			}
		}
		if keep == nil {
			// A new or changed monitor starts from the server's state.
			keep = &probe{srv: s, mon: m, addr: addr, host: host, up: s.up}
			c.startProbe(keep)
		}
		used[keep] = true
		next = append(next, keep)
	}
	for _, p := range s.probes {
		if !used[p] {
			c.stopProbe(p)
		}
	}
	s.probes = next
	s.setUp(s.allUp())
	c.metrics.setUp(s.pool.name, s.id, s.up)
}

func (c *Checker) removeServer(s *server) {
	for _, p := range s.probes {
		c.stopProbe(p)
	}
	s.probes = nil
	c.metrics.forget(s.pool.name, s.id)
}

func (c *Checker) removePool(pl *pool) {
	for _, s := range pl.servers {
		for _, p := range s.probes {
			c.stopProbe(p)
		}
		s.probes = nil
	}
	c.metrics.forgetPool(pl.name)
}

// publishView makes the current servers and pools readable without the
// lock.
func (c *Checker) publishView() {
	v := &view{servers: make(map[serverKey]*ServerState), pools: make(map[string]*poolCount, len(c.pools))}
	for _, pl := range c.pools {
		v.pools[pl.name] = pl.count
		for _, s := range pl.order {
			v.servers[s.key] = s.state
		}
	}
	for k, st := range c.orphans {
		if _, ok := v.servers[k]; !ok {
			v.servers[k] = st
		}
	}
	c.view.Store(v)
}

func (s *server) setUp(up bool) {
	s.up = up
	s.state.up.Store(up)
}

// allUp reports whether every monitor of s is up; true with none.
func (s *server) allUp() bool {
	for _, p := range s.probes {
		if !p.up {
			return false
		}
	}
	return true
}

// Up reports whether a pool's server may take new requests: true for a
// server the Checker does not know, and for one without monitors; false
// for a disabled one.
func (c *Checker) Up(pool, ip string, port int) bool {
	return c.view.Load().servers[serverKey{pool: pool, ip: ip, port: port}].Up()
}

// ServerState returns the state of a pool's server; port is the server's
// port (spec.Pool.ServerPort), not the monitor's. The same pointer is
// returned for as long as the server stays in its pool. A server Set has
// not named yet gets a state that is up, which Set adopts if it names
// the server next.
func (c *Checker) ServerState(pool, ip string, port int) *ServerState {
	k := serverKey{pool: pool, ip: ip, port: port}
	if st := c.view.Load().servers[k]; st != nil {
		return st
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.view.Load().servers[k]; st != nil {
		return st
	}
	st := &ServerState{}
	st.up.Store(true)
	c.orphans[k] = st
	c.publishView()
	return st
}

// Servers returns how many of a pool's enabled servers are up, and how
// many are enabled; 0, 0 for a pool the Checker does not know.
func (c *Checker) Servers(pool string) (up, total int) {
	pc := c.view.Load().pools[pool]
	if pc == nil {
		return 0, 0
	}
	return pc.load()
}

func (c *Checker) startProbe(p *probe) {
	if !c.started || c.stopped {
		return
	}
	ctx, cancel := context.WithCancel(c.ctx)
	p.cancel = cancel
	c.wg.Add(1)
	go c.run(ctx, p)
}

func (c *Checker) stopProbe(p *probe) {
	p.stopped = true
	if p.cancel != nil {
		p.cancel()
	}
}

// run checks p every interval until ctx ends. The first check waits a
// random part of the interval, so that a pool's checks spread out.
func (c *Checker) run(ctx context.Context, p *probe) {
	defer c.wg.Done()
	m := p.mon
	t := time.NewTimer(jitter(m.every))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		r := check(ctx, c.dial, m, p.addr, p.host)
		if ctx.Err() != nil {
			return
		}
		if pool := c.record(p, r); pool != "" && c.opts.OnChange != nil {
			c.opts.OnChange(pool)
		}
		t.Reset(max(m.every-time.Since(start), 0))
	}
}

func jitter(every time.Duration) time.Duration {
	return rand.N(min(every/2, maxJitter) + 1)
}

// record applies a check's result to p and its server and pool, queues
// the events of what changed, and returns the pool's name when its up
// set changed.
func (c *Checker) record(p *probe, r result) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.stopped {
		return ""
	}
	s, pl := p.srv, p.srv.pool
	c.metrics.check(pl.name, r.code)
	if r.elapsed > 0 {
		ms := float64(r.elapsed) / float64(time.Millisecond)
		if p.avgMS == 0 {
			p.avgMS = ms
		} else {
			p.avgMS += (ms - p.avgMS) / 8
		}
	}
	p.last = r
	if r.code == "" {
		p.passes++
		p.fails = 0
	} else {
		p.fails++
		p.passes = 0
		c.log.Debug("check failed", "pool", pl.name, "server", s.id, "monitor", p.mon.name, "failure_code", r.code, "err", r.err)
	}
	switch {
	case p.up && p.fails >= p.mon.fall:
		p.up = false
	case !p.up && p.passes >= p.mon.rise:
		p.up = true
	default:
		return ""
	}
	up := s.allUp()
	if up == s.up {
		return ""
	}
	s.setUp(up)
	c.metrics.setUp(pl.name, s.id, up)
	if up {
		pl.up++
	} else {
		pl.up--
	}
	pl.count.store(pl.up, pl.total)
	t := &transition{
		pool:    pl.name,
		vses:    pl.vses,
		up:      up,
		monitor: p.mon.name,
		pct:     percent(pl.up, pl.total),
		server:  c.serverDetails(s, p, up),
	}
	switch {
	case !up && pl.up == 0 && !pl.down:
		pl.down, t.poolFlip = true, true
	case up && pl.down:
		pl.down, t.poolFlip = false, true
	}
	if up {
		c.log.Info("server up", "pool", pl.name, "server", s.id, "percent_servers_up", t.pct)
	} else {
		c.log.Warn("server down", "pool", pl.name, "server", s.id, "monitor", p.mon.name, "failure_code", r.code, "percent_servers_up", t.pct)
	}
	if c.pub != nil {
		c.enqueue(c.buildEvents(t, c.now()))
	}
	return pl.name
}

// serverDetails describes s for its event: on SERVER_DOWN the monitor
// that failed, on SERVER_UP every monitor.
func (c *Checker) serverDetails(s *server, failed *probe, up bool) serverDetails {
	d := serverDetails{IP: newIPAddr(s.key.ip), Port: s.key.port, Hostname: s.hostname}
	if d.Hostname == "" {
		d.Hostname = s.key.ip
	}
	shm := func(p *probe) shmDetails {
		return shmDetails{
			HealthMonitor:       p.mon.name,
			ResponseCode:        p.last.status,
			RespString:          p.last.excerpt,
			AverageResponseTime: uint64(p.avgMS + 0.5),
		}
	}
	if !up {
		d.FailureCode = failed.last.code
		d.Shm = []shmDetails{shm(failed)}
		return d
	}
	for _, p := range s.probes {
		d.Shm = append(d.Shm, shm(p))
	}
	return d
}
