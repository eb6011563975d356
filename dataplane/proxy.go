package dataplane

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/dataplane/datascript"
	"github.com/vigilhq/vigil/dataplane/health"
	"github.com/vigilhq/vigil/dataplane/spec"
)

// Watcher is the part of the config store the proxy follows.
type Watcher interface {
	Watch(ctx context.Context, kind string, fn func(config.Change)) error
}

// Options configure a Proxy.
type Options struct {
	Store  Watcher
	Logger *slog.Logger
	// Events receives health events, DATASCRIPT_ERROR and the events of
	// vigil.event; nil publishes none. *events.Bus is one.
	Events health.Publisher
	// AccessLog receives one line per request of virtual services that
	// log access; default Logger.
	AccessLog *slog.Logger
	// Registerer, when set, gets the proxy's and the health monitors'
	// metrics.
	Registerer prometheus.Registerer
	// Certs reads the certificate of a TLS virtual service from its
	// Secret; without it TLS virtual services do not serve.
	Certs CertSource
	// DrainTimeout bounds how long Stop waits for requests in flight;
	// default 10s.
	DrainTimeout time.Duration
	// Debounce is how long the proxy waits after a change for more before
	// it rebuilds; default 20ms.
	Debounce time.Duration
	// Serving, when set, is told how many virtual services listen each
	// time that number changes, 0 included, outside the proxy's locks.
	Serving func(n int)
	// ScriptBudget is the wall-clock time one DataScript run may take;
	// default datascript.DefaultBudget.
	ScriptBudget time.Duration
}

// Proxy is the data plane: it follows the VirtualService, Pool,
// HealthMonitor, DataScriptSet, StringGroup and IPGroup objects and serves
// each enabled virtual service on its own listener. A config change swaps
// the snapshot that new requests see; requests in flight finish on the one
// they started with.
type Proxy struct {
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	specs     map[string]map[string]json.RawMessage // kind → name → spec
	synced    map[string]bool
	listeners map[string]*listener // by VirtualService name
	backends  map[string]*backend  // by pool + "/" + ip:port
	engines   map[string]*datascript.Engine
	pools     map[string]*poolRuntime // of the current snapshot
	changed   chan struct{}
	serving   int // listeners at the last rebuild

	health *health.Checker
	pub    *publisher

	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// watchedKinds are the kinds the proxy follows; Secrets for the
// certificates of TLS virtual services.
var watchedKinds = []string{spec.KindVirtualService, spec.KindPool, spec.KindHealthMonitor, spec.KindDataScriptSet, spec.KindStringGroup, spec.KindIPGroup, config.KindSecret}

// New returns a proxy; Start begins serving.
func New(opts Options) *Proxy {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Debounce == 0 {
		opts.Debounce = 20 * time.Millisecond
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 10 * time.Second
	}
	p := &Proxy{
		opts: opts, log: opts.Logger.With("component", "dataplane"),
		specs: map[string]map[string]json.RawMessage{}, synced: map[string]bool{},
		listeners: map[string]*listener{}, backends: map[string]*backend{},
		engines: map[string]*datascript.Engine{},
		changed: make(chan struct{}, 1),
	}
	if opts.AccessLog == nil {
		opts.AccessLog = opts.Logger
	}
	p.opts = opts
	p.pub = newPublisher(opts.Events, p.log)
	p.health = health.New(health.Options{Publisher: opts.Events, Logger: opts.Logger, Registerer: opts.Registerer})
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(collector{p})
	}
	for _, k := range watchedKinds {
		p.specs[k] = map[string]json.RawMessage{}
	}
	return p
}

// Start follows the config and serves once every kind has been read.
func (p *Proxy) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	p.cancel = cancel
	p.health.Start(ctx)
	p.wg.Go(func() { p.pub.run(ctx) })
	p.wg.Go(func() { p.poolMetrics(ctx) })
	for _, k := range watchedKinds {
		err := p.opts.Store.Watch(ctx, k, func(c config.Change) {
			p.mu.Lock()
			switch c.Op {
			case config.OpSynced:
				p.synced[k] = true
			case config.OpPut:
				p.specs[k][c.Object.Name] = c.Object.Spec
			case config.OpDelete:
				delete(p.specs[k], c.Object.Name)
			}
			p.mu.Unlock()
			select {
			case p.changed <- struct{}{}:
			default:
			}
		})
		if err != nil {
			cancel()
			return fmt.Errorf("dataplane: watch %s: %w", k, err)
		}
	}
	p.wg.Go(func() { p.loop(ctx) })
	return nil
}

func (p *Proxy) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.changed:
		}
		// More changes often follow one (an apply of many objects).
		t := time.NewTimer(p.opts.Debounce)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		p.mu.Lock()
		ready := len(p.synced) == len(watchedKinds)
		p.mu.Unlock()
		if ready {
			p.rebuild()
		}
	}
}

// Stop closes the listeners, closes the client connections that wait for
// a request, lets the requests in flight finish for up to DrainTimeout,
// and closes idle server connections. It is idempotent.
func (p *Proxy) Stop() {
	p.stopOnce.Do(func() {
		if p.cancel != nil {
			p.cancel()
		}
		p.wg.Wait()
		p.mu.Lock()
		ls := p.listeners
		p.listeners = map[string]*listener{}
		bs := p.backends
		p.mu.Unlock()
		for _, l := range ls {
			l.close()
		}
		deadline := time.Now().Add(p.opts.DrainTimeout)
		for _, l := range ls {
			for l.conns.Load() > 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
		}
		for _, b := range bs {
			b.closeIdle()
		}
		p.health.Stop()
	})
}

// Addr returns the address a virtual service listens on, or "" when it is
// not serving.
func (p *Proxy) Addr(vs string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l, ok := p.listeners[vs]; ok {
		return l.ln.Addr().String()
	}
	return ""
}

// vsRuntime is a virtual service as one config snapshot has it.
type vsRuntime struct {
	name        string
	spec        *spec.VirtualService
	pool        *poolRuntime            // default; nil when it has none
	pools       map[string]*poolRuntime // every pool, for DataScripts
	ip          string
	port        string
	scheme      string // "http" or "https"
	schemeBytes []byte
	host        string // ip:port, the Host of an HTTP/1.0 request without one
	// scripts runs the DataScripts; nil when the virtual service has none.
	scripts   *datascript.Engine
	accessLog *slog.Logger
	pub       *publisher
}

// rebuild makes a new snapshot from the specs and reconciles listeners.
func (p *Proxy) rebuild() {
	notify := -1
	defer func() {
		if notify >= 0 && p.opts.Serving != nil {
			p.opts.Serving(notify)
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	pools := map[string]*poolRuntime{}
	keep := map[string]bool{}
	monitors := p.monitors()
	checks := map[string]health.PoolConfig{}
	for name, raw := range p.specs[spec.KindPool] {
		ps, err := spec.ParsePool(raw)
		if err != nil {
			p.log.Error("pool refused", "pool", name, "err", err)
			continue
		}
		pc := health.PoolConfig{Name: name, Pool: ps}
		for _, m := range ps.HealthMonitors {
			hm := monitors[m]
			if hm == nil {
				p.log.Warn("pool names a health monitor that does not exist; it is not checked", "pool", name, "health_monitor", m)
				continue
			}
			pc.Monitors = append(pc.Monitors, hm)
		}
		if len(pc.Monitors) != len(ps.HealthMonitors) {
			// Monitor names and monitors go together: keep those found.
			cp := *ps
			cp.HealthMonitors = nil
			for _, m := range ps.HealthMonitors {
				if monitors[m] != nil {
					cp.HealthMonitors = append(cp.HealthMonitors, m)
				}
			}
			pc.Pool = &cp
		}
		checks[name] = pc
		pools[name] = p.buildPool(name, ps, keep)
	}
	for name, raw := range p.specs[spec.KindVirtualService] {
		if vs, err := spec.ParseVirtualService(raw); err == nil && vs.IsEnabled() && vs.Pool != "" {
			if pc, ok := checks[vs.Pool]; ok {
				pc.VirtualServices = append(pc.VirtualServices, name)
				checks[vs.Pool] = pc
			}
		}
	}
	p.health.Set(checks)
	for _, pr := range pools {
		for _, m := range pr.members {
			m.health = p.health.ServerState(pr.name, m.ip, m.port)
		}
	}
	p.pools = pools
	sets, sgroups, ipgroups := p.scriptObjects()
	for key, b := range p.backends {
		if !keep[key] {
			b.closeIdle()
			delete(p.backends, key)
		}
	}
	seen := map[string]bool{}
	for name, raw := range p.specs[spec.KindVirtualService] {
		vs, err := spec.ParseVirtualService(raw)
		if err != nil {
			p.log.Error("virtual service refused", "virtual_service", name, "err", err)
			continue
		}
		if !vs.IsEnabled() {
			continue
		}
		rt := &vsRuntime{name: name, spec: vs, pools: pools, scheme: "http", port: vs.Port(), accessLog: p.opts.AccessLog, pub: p.pub}
		rt.ip, _, _ = net.SplitHostPort(vs.Listen)
		rt.host = vs.Listen
		if vs.Pool != "" {
			rt.pool = pools[vs.Pool]
			if rt.pool == nil {
				p.log.Warn("virtual service names a pool that does not exist; it answers 503", "virtual_service", name, "pool", vs.Pool)
			}
		}
		var ts *tlsState
		if vs.TLS != nil {
			rt.scheme = "https"
		}
		rt.schemeBytes = []byte(rt.scheme)
		if vs.TLS != nil {
			if ts, err = p.loadTLS(vs); err != nil {
				p.log.Error("virtual service's certificate cannot be loaded; it does not serve", "virtual_service", name, "secret", vs.TLS.Secret, "err", err)
				continue
			}
		}
		seen[name] = true
		l := p.listeners[name]
		// The same address, written as it was bound (a port 0 made
		// concrete), keeps the listener.
		moved := l != nil && l.listen != vs.Listen && l.ln.Addr().String() != vs.Listen
		if l != nil && (moved || l.isTLS != (ts != nil)) {
			l.close()
			delete(p.listeners, name)
			l = nil
		}
		if l == nil {
			nl, err := p.listen(name, vs.Listen, ts != nil)
			if err != nil {
				p.log.Error("virtual service cannot listen", "virtual_service", name, "listen", vs.Listen, "err", err)
				continue
			}
			l = nl
			p.listeners[name] = l
		}
		rt.scripts = p.engine(rt, l, sets, sgroups, ipgroups)
		l.tls.Store(ts)
		l.vs.Store(rt)
	}
	for name, l := range p.listeners {
		if !seen[name] {
			l.close()
			delete(p.listeners, name)
		}
	}
	for name := range p.engines {
		if !seen[name] {
			delete(p.engines, name)
		}
	}
	if n := len(p.listeners); n != p.serving {
		p.serving, notify = n, n
	}
}

// buildPool makes a pool's runtime, reusing the backends it had.
func (p *Proxy) buildPool(name string, ps *spec.Pool, keep map[string]bool) *poolRuntime {
	pr := &poolRuntime{name: name, spec: ps, timeout: ps.ServerTimeout.D()}
	if ps.Algorithm() == spec.LBConsistentHash {
		pr.hashKey = ps.Hash()
	}
	st := &backendSettings{connectTimeout: ps.ConnectTimeout.D(), maxIdle: ps.MaxIdlePerServer, maxConns: ps.MaxConnsPerServer}
	for i := range ps.Servers {
		s := &ps.Servers[i]
		port := ps.ServerPort(s)
		key := name + "/" + net.JoinHostPort(s.IP, strconv.Itoa(port))
		b := p.backends[key]
		if b == nil {
			b = newBackend(name, s.IP, port)
			p.backends[key] = b
		}
		keep[key] = true
		b.settings.Store(st)
		pr.members = append(pr.members, &member{backend: b, hostname: s.Hostname, ratio: s.Ratio, enabled: s.IsEnabled()})
	}
	pr.bal = newBalancer(ps, pr.members)
	return pr
}

// listener is a virtual service's listening socket and its current
// snapshot.
type listener struct {
	name   string
	listen string
	ln     net.Listener
	vs     atomic.Pointer[vsRuntime]
	conns  atomic.Int64
	log    *slog.Logger
	done   chan struct{}

	isTLS bool
	tls   atomic.Pointer[tlsState]
	h2    *h2Server
	// statuses counts answers by class: 1xx to 5xx.
	statuses [5]atomic.Uint64

	// draining is set by close; cmu guards open, the HTTP/1.x
	// connections being served.
	draining atomic.Bool
	cmu      sync.Mutex
	open     map[*clientConn]struct{}
}

// track adds or removes a connection being served.
func (l *listener) track(cc *clientConn, add bool) {
	l.cmu.Lock()
	defer l.cmu.Unlock()
	if add {
		if l.open == nil {
			l.open = map[*clientConn]struct{}{}
		}
		l.open[cc] = struct{}{}
		return
	}
	delete(l.open, cc)
}

func (p *Proxy) listen(name, addr string, isTLS bool) (*listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	l := &listener{name: name, listen: addr, ln: ln, log: p.log.With("virtual_service", name), done: make(chan struct{}), isTLS: isTLS}
	if isTLS {
		l.h2 = l.newH2Server()
	}
	go l.accept()
	p.log.Info("virtual service listening", "virtual_service", name, "addr", ln.Addr().String())
	return l, nil
}

func (l *listener) accept() {
	defer close(l.done)
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, as net/http does.
			delay = min(max(delay*2, 5*time.Millisecond), time.Second)
			l.log.Warn("accept", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		if l.isTLS {
			go l.serveTLS(c)
		} else {
			go l.serve(c)
		}
	}
}

// close stops accepting; connections in flight end after their current
// request, as they find no snapshot, and idle ones at once.
func (l *listener) close() {
	l.vs.Store(nil)
	l.draining.Store(true)
	_ = l.ln.Close()
	<-l.done
	// Connections waiting for a request end now; the others after the
	// request they are serving.
	l.cmu.Lock()
	for cc := range l.open {
		if cc.idle.Load() {
			_ = cc.c.SetReadDeadline(time.Now())
		}
	}
	l.cmu.Unlock()
	if l.h2 != nil {
		go l.h2.close()
	}
}

// loadTLS reads a TLS virtual service's certificate; p.mu is held.
func (p *Proxy) loadTLS(vs *spec.VirtualService) (*tlsState, error) {
	if p.opts.Certs == nil {
		return nil, errors.New("no certificate source")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	certPEM, keyPEM, err := p.opts.Certs(ctx, vs.TLS.Secret)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", vs.TLS.Secret, err)
	}
	protos := []string{"http/1.1"}
	if vs.TLS.HTTP2Enabled() {
		protos = []string{"h2", "http/1.1"}
	}
	return &tlsState{config: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: protos, MinVersion: tls.VersionTLS12}}, nil
}
