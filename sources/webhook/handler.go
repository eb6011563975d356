package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/events"
)

// Publisher stores events and returns once JetStream has acknowledged
// them. *events.Bus is one.
type Publisher interface {
	Publish(ctx context.Context, ev *events.Event) (events.PublishResult, error)
}

// batchPublisher is the optional ability to pipeline several events.
type batchPublisher interface {
	PublishBatch(ctx context.Context, evs []*events.Event) ([]events.PublishResult, error)
}

var _ batchPublisher = (*events.Bus)(nil)

// Watcher is the part of the config store the service follows.
type Watcher interface {
	Watch(ctx context.Context, kind string, fn func(config.Change)) error
}

// Defaults of Options.
const (
	DefaultPublishTimeout = 5 * time.Second
	DefaultSecretTTL      = 30 * time.Second
	// RetryAfter is the Retry-After, in seconds, of a 503.
	RetryAfter = 5
)

// Options configure a Service. Store, Secrets and Publisher are required.
type Options struct {
	// Store is followed for WebhookReceiver objects (and Secrets, to drop
	// cached values when they change). *config.Store is one.
	Store Watcher
	// Secrets opens the Secrets that auth refers to.
	Secrets config.SecretReader
	// Publisher stores the events.
	Publisher Publisher
	// JS holds the dedup bucket; without it repeated deliveries are
	// caught only by JetStream's duplicate window.
	JS jetstream.JetStream
	// Replicas of the dedup bucket on a cluster; default 1.
	Replicas int
	// Logger; default slog.Default. The service adds component=webhook.
	Logger *slog.Logger
	// Clock; default time.Now.
	Clock func() time.Time
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
	// PublishTimeout bounds the wait for JetStream's acknowledgement;
	// default 5s.
	PublishTimeout time.Duration
	// SecretTTL is how long an opened Secret is cached; default 30s.
	SecretTTL time.Duration
}

// Service serves /hooks/{name} for every WebhookReceiver.
type Service struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics
	secrets *secretCache

	mu        sync.RWMutex
	receivers map[string]*receiver
	synced    bool
	dedup     *dedup

	recording chan struct{}
	inflight  sync.WaitGroup

	stopOnce sync.Once
	cancel   context.CancelFunc
}

// New checks opts and returns a service; Start begins following the
// configuration.
func New(opts Options) (*Service, error) {
	switch {
	case opts.Store == nil:
		return nil, errors.New("webhook: Options.Store is required")
	case opts.Secrets == nil:
		return nil, errors.New("webhook: Options.Secrets is required")
	case opts.Publisher == nil:
		return nil, errors.New("webhook: Options.Publisher is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.PublishTimeout <= 0 {
		opts.PublishTimeout = DefaultPublishTimeout
	}
	if opts.SecretTTL <= 0 {
		opts.SecretTTL = DefaultSecretTTL
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("webhook metrics: %w", err)
	}
	return &Service{
		opts:      opts,
		log:       opts.Logger.With("component", "webhook"),
		metrics:   m,
		secrets:   &secretCache{src: opts.Secrets, ttl: opts.SecretTTL, clock: opts.Clock, m: map[string]cachedSecret{}},
		receivers: map[string]*receiver{},
		recording: make(chan struct{}, maxRecording),
	}, nil
}

// Start opens the dedup bucket and follows WebhookReceiver objects; it
// returns once the stored receivers are loaded, or when ctx ends.
func (s *Service) Start(ctx context.Context) error {
	wctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if s.opts.JS != nil {
		d, err := openDedup(ctx, s.opts.JS, s.opts.Replicas)
		if err != nil {
			cancel()
			return err
		}
		s.dedup = d
	}
	synced := make(chan struct{})
	var once sync.Once
	err := s.opts.Store.Watch(wctx, KindWebhookReceiver, func(c config.Change) {
		s.apply(c)
		if c.Op == config.OpSynced {
			once.Do(func() { close(synced) })
		}
	})
	if err != nil {
		cancel()
		return fmt.Errorf("webhook: %w", err)
	}
	if err := s.opts.Store.Watch(wctx, config.KindSecret, func(c config.Change) {
		if c.Object != nil {
			s.secrets.forget(c.Object.Name)
		}
	}); err != nil {
		cancel()
		return fmt.Errorf("webhook: %w", err)
	}
	select {
	case <-synced:
		return nil
	case <-ctx.Done():
		cancel()
		return fmt.Errorf("webhook: load receivers: %w", ctx.Err())
	}
}

// Stop stops following the configuration and waits for the dedup records
// being written. It is idempotent.
func (s *Service) Stop() {
	s.stopOnce.Do(func() {
		if s.cancel != nil {
			s.cancel()
		}
		s.inflight.Wait()
	})
}

func (s *Service) apply(c config.Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch c.Op {
	case config.OpSynced:
		s.synced = true
	case config.OpDelete:
		delete(s.receivers, c.Object.Name)
		s.log.Info("receiver removed", "receiver", c.Object.Name)
	case config.OpPut:
		rc, err := compile(c.Object.Name, c.Object.Spec)
		if err != nil {
			delete(s.receivers, c.Object.Name)
			s.log.Error("stored WebhookReceiver is invalid; it is not served", "receiver", c.Object.Name, "err", err)
			return
		}
		s.receivers[c.Object.Name] = rc
		s.log.Info("receiver loaded", "receiver", c.Object.Name, "format", rc.spec.Format, "auth", rc.auth.typ, "revision", c.Revision)
	}
}

func (s *Service) receiver(name string) (*receiver, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.receivers[name], s.synced
}

// accepted is the body of a 202 or 200 answer.
type accepted struct {
	Receiver   string   `json:"receiver"`
	Accepted   int      `json:"accepted"`
	Duplicates int      `json:"duplicates"`
	Events     []string `json:"events"`
}

// ServeHTTP serves POST /hooks/{name}: 202 once every event of the
// delivery is stored, 200 when all were delivered before, else an error
// in the API's shape.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.opts.Clock()
	name := r.PathValue("name")
	rc, synced := s.receiver(name)
	label := ""
	if rc != nil {
		label = name
	}
	status, err := s.serve(w, r, rc, name, synced, start)
	if err != nil {
		var re *requestError
		if !errors.As(err, &re) {
			s.log.Error("request failed", "receiver", name, "err", err)
			re = &requestError{status: http.StatusInternalServerError, code: codeInternal, msg: "internal error; the server log has the details"}
		}
		if re.object == "" && rc != nil {
			re.object = KindWebhookReceiver + "/" + name
		}
		status = re.status
		writeError(w, re)
		if status >= 500 {
			if re.cause != nil {
				err = re.cause
			}
			s.log.Warn("delivery not accepted", "receiver", name, "status", status, "err", err)
		} else {
			s.log.Debug("delivery refused", "receiver", name, "status", status, "err", err)
		}
	}
	s.metrics.requests.WithLabelValues(label, resultOf(status)).Inc()
	s.metrics.duration.WithLabelValues(label).Observe(s.opts.Clock().Sub(start).Seconds())
}

func (s *Service) serve(w http.ResponseWriter, r *http.Request, rc *receiver, name string, synced bool, now time.Time) (int, error) {
	if rc == nil {
		if !synced {
			return 0, &requestError{status: http.StatusServiceUnavailable, code: codeUnavailable, msg: "receivers are still loading", retryAfter: 1}
		}
		return 0, &requestError{status: http.StatusNotFound, code: codeNotFound, object: KindWebhookReceiver + "/" + name, msg: "no such receiver"}
	}
	handshake := r.Method == http.MethodOptions && rc.spec.Format == FormatCloudEvents
	if r.Method != http.MethodPost && !handshake {
		allow := http.MethodPost
		if rc.spec.Format == FormatCloudEvents {
			allow += ", " + http.MethodOptions
		}
		w.Header().Set("Allow", allow)
		return 0, &requestError{status: http.StatusMethodNotAllowed, code: codeMethodNotAllowed, msg: "use POST"}
	}
	if len(rc.allow) > 0 {
		addr, err := peer(r.RemoteAddr)
		if err != nil || !rc.allowed(addr) {
			return 0, &requestError{status: http.StatusForbidden, code: codeForbidden, msg: fmt.Sprintf("client address %s is not allowed", r.RemoteAddr)}
		}
	}
	if handshake {
		return handshakeCloudEvents(w, r, rc)
	}
	if rc.limiter != nil {
		res := rc.limiter.ReserveN(now, 1)
		if d := res.DelayFrom(now); !res.OK() || d > 0 {
			res.CancelAt(now)
			secs := int(math.Ceil(d.Seconds()))
			if !res.OK() || secs < 1 {
				secs = 1
			}
			return 0, &requestError{status: http.StatusTooManyRequests, code: codeRateLimited, msg: "the receiver's rate limit is exceeded; try again later", retryAfter: secs}
		}
	}
	tooLarge := &requestError{status: http.StatusRequestEntityTooLarge, code: codeTooLarge, msg: fmt.Sprintf("body is over the %d-byte limit", rc.maxBody)}
	if r.ContentLength > rc.maxBody {
		return 0, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, rc.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			if mbe.Limit < rc.maxBody {
				tooLarge.msg = fmt.Sprintf("body is over the %d-byte limit", mbe.Limit)
			}
			return 0, tooLarge
		}
		return 0, badRequest("body", "could not be read: %v", err)
	}
	if err := rc.auth.check(r.Header, body, now, s.secrets.lookup(r.Context())); err != nil {
		var ae *authError
		if errors.As(err, &ae) {
			if rc.auth.typ == AuthBasic {
				w.Header().Set("WWW-Authenticate", `Basic realm="vigil webhook `+name+`"`)
			}
			return 0, &requestError{status: http.StatusUnauthorized, code: codeUnauthorized, msg: ae.msg}
		}
		return 0, &requestError{status: http.StatusServiceUnavailable, code: codeUnavailable, msg: "the receiver's secret cannot be read; the server log has the details", retryAfter: RetryAfter, cause: err}
	}
	mt, err := mediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return 0, err
	}
	items, err := rc.decode(&delivery{h: r.Header, body: body, now: now, ctype: mt})
	if err != nil {
		return 0, err
	}
	return s.publish(r.Context(), w, rc, items)
}

// publish stores the new items and answers 202 after JetStream has
// acknowledged them all; items seen before are skipped.
func (s *Service) publish(ctx context.Context, w http.ResponseWriter, rc *receiver, items []item) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.PublishTimeout)
	defer cancel()
	out := accepted{Receiver: rc.name, Events: []string{}}
	fresh := items[:0:0]
	for _, it := range items {
		if it.key != "" && s.dedup != nil {
			seen, err := s.dedup.seen(ctx, it.key)
			if err != nil {
				return 0, unavailable(err)
			}
			if seen {
				out.Duplicates++
				continue
			}
		}
		fresh = append(fresh, it)
	}
	if len(fresh) > 0 {
		evs := make([]*events.Event, len(fresh))
		for i, it := range fresh {
			evs[i] = it.ev
		}
		results := make([]events.PublishResult, len(evs))
		var err error
		if bp, ok := s.opts.Publisher.(batchPublisher); ok && len(evs) > 1 {
			var rs []events.PublishResult
			if rs, err = bp.PublishBatch(ctx, evs); err == nil {
				copy(results, rs)
			}
		} else {
			for i, ev := range evs {
				if results[i], err = s.opts.Publisher.Publish(ctx, ev); err != nil {
					break
				}
			}
		}
		if err != nil {
			var fe *events.FieldError
			if errors.As(err, &fe) {
				return 0, &requestError{status: http.StatusRequestEntityTooLarge, code: codeTooLarge, field: fe.Field, msg: fe.Message}
			}
			return 0, unavailable(err)
		}
		var keys []string
		n := 0
		for i, it := range fresh {
			if it.key != "" {
				keys = append(keys, it.key)
			}
			if results[i].Duplicate {
				// JetStream already had it: a repeat racing the dedup record.
				out.Duplicates++
				continue
			}
			out.Events = append(out.Events, it.ev.ID)
			n++
		}
		s.metrics.published.WithLabelValues(rc.name).Add(float64(n))
		s.record(keys, rc)
		fresh = fresh[:n]
	}
	out.Accepted = len(fresh)
	status := http.StatusAccepted
	if len(fresh) == 0 {
		status = http.StatusOK
	}
	writeJSON(w, status, out)
	return status, nil
}

// maxRecording bounds the dedup records being written in the background.
const maxRecording = 1024

// record remembers delivery keys after their events are stored. The
// events are durable already, so this does not hold up the answer: a
// repeat that arrives before the record lands carries the same event id and
// JetStream's duplicate window drops it. When too many records are in
// flight, this one is written before answering.
func (s *Service) record(keys []string, rc *receiver) {
	if len(keys) == 0 || s.dedup == nil {
		return
	}
	write := func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.PublishTimeout)
		defer cancel()
		for _, k := range keys {
			if err := s.dedup.record(ctx, k, rc.dedupWindow); err != nil {
				s.log.Warn("delivery not remembered; a repeat may publish again", "receiver", rc.name, "err", err)
			}
		}
	}
	select {
	case s.recording <- struct{}{}:
		s.inflight.Add(1)
		go func() {
			defer func() { <-s.recording; s.inflight.Done() }()
			write()
		}()
	default:
		write()
	}
}

func unavailable(err error) error {
	return &requestError{status: http.StatusServiceUnavailable, code: codeUnavailable, msg: "the event bus cannot take the delivery now; try again later", retryAfter: RetryAfter, cause: err}
}

func peer(remote string) (netip.Addr, error) {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("client address %q: %w", remote, err)
	}
	return a.Unmap(), nil
}

// cachedSecret is one opened Secret.
type cachedSecret struct {
	vals    map[string]config.SecretValue
	fetched time.Time
}

// secretCache keeps opened Secrets for a short time; a change to a Secret
// drops its entry at once.
type secretCache struct {
	src   config.SecretReader
	ttl   time.Duration
	clock func() time.Time
	mu    sync.Mutex
	m     map[string]cachedSecret
}

// secretError is a Secret that cannot be read or used.
type secretError struct {
	ref SecretRef
	err error
}

func (e *secretError) Error() string { return "secret " + e.ref.String() + ": " + e.err.Error() }
func (e *secretError) Unwrap() error { return e.err }

func (c *secretCache) forget(name string) {
	c.mu.Lock()
	delete(c.m, name)
	c.mu.Unlock()
}

func (c *secretCache) lookup(ctx context.Context) secretLookup {
	return func(ref SecretRef) ([]byte, error) {
		now := c.clock()
		c.mu.Lock()
		e, ok := c.m[ref.Name]
		c.mu.Unlock()
		if !ok || now.Sub(e.fetched) > c.ttl || now.Before(e.fetched) {
			vals, err := config.ReadSecret(ctx, c.src, ref.Name)
			if err != nil {
				return nil, &secretError{ref: ref, err: err}
			}
			e = cachedSecret{vals: vals, fetched: now}
			c.mu.Lock()
			c.m[ref.Name] = e
			c.mu.Unlock()
		}
		v, ok := e.vals[ref.Key]
		if !ok {
			return nil, &secretError{ref: ref, err: fmt.Errorf("no key %q", ref.Key)}
		}
		return []byte(v.Reveal()), nil
	}
}

// handshakeCloudEvents answers the abuse-protection handshake of the
// CloudEvents HTTP webhook specification (an OPTIONS request naming the
// sender in WebHook-Request-Origin): the receiver agrees to deliveries
// from that origin, at its rate limit when it has one. A request without
// the header is a 400 naming it.
func handshakeCloudEvents(w http.ResponseWriter, r *http.Request, rc *receiver) (int, error) {
	origin := strings.TrimSpace(r.Header.Get("WebHook-Request-Origin"))
	if origin == "" {
		return 0, badRequest("WebHook-Request-Origin", "the CloudEvents handshake names its origin in this header")
	}
	h := w.Header()
	h.Set("Allow", http.MethodPost+", "+http.MethodOptions)
	h.Set("WebHook-Allowed-Origin", origin)
	if rc.spec.RateLimit != nil {
		h.Set("WebHook-Allowed-Rate", strconv.Itoa(max(1, int(rc.spec.RateLimit.RPS*60))))
	} else {
		h.Set("WebHook-Allowed-Rate", "*")
	}
	w.WriteHeader(http.StatusOK)
	return http.StatusOK, nil
}
