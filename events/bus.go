package events

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream names.
const (
	EventsStream   = "VIGIL_EVENTS"
	IngestStream   = "VIGIL_INGEST"
	RejectedStream = "VIGIL_REJECTED"
)

// Defaults for the streams vigil owns.
const (
	DefaultEventsMaxAge   = 7 * 24 * time.Hour
	DefaultEventsMaxBytes = 1 << 30
	// MaxEventSize bounds one stored event.
	MaxEventSize = 1 << 20
	// DuplicateWindow is how long JetStream remembers an event id.
	DuplicateWindow = 2 * time.Minute
	// ClientUser is the NATS user whose credentials vigil writes for users.
	ClientUser = "vigil-client"
	// InternalInboxPrefix keeps vigil's own replies out of the client user's
	// reach: the client user may subscribe to _INBOX.> only.
	InternalInboxPrefix = "_VIGIL_INBOX"
)

// BusOptions configures [StartBus].
type BusOptions struct {
	// StoreDir is the JetStream store of the embedded server.
	StoreDir string
	// ClientListen is the embedded server's client address; "off" or ""
	// serves in-process connections only; port 0 picks a free port.
	ClientListen string
	// ClientPassword is the password of the ClientUser; empty disables the user.
	ClientPassword string
	// SyncAlways fsyncs every JetStream write.
	SyncAlways bool
	// DuplicateWindow is how long the events and ingest streams drop a
	// repeated id; default DuplicateWindow (2 minutes).
	DuplicateWindow time.Duration

	// URL connects to an existing NATS server or cluster instead.
	URL                   string
	Creds, User, Password string
	CA, CertFile, KeyFile string
	// Replicas of each stream on a cluster; default 1.
	Replicas                  int
	EventsMaxAge              time.Duration
	EventsMaxBytes            int64
	Logger                    *slog.Logger
	ConnectTimeout, ReadyWait time.Duration
}

// Bus is vigil's connection to JetStream: the embedded server when there is
// one, the in-process connection, and the streams vigil owns.
type Bus struct {
	opts   BusOptions
	log    *slog.Logger
	srv    *server.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	events jetstream.Stream

	clientURL string
	stopOnce  sync.Once
}

// StartBus starts the embedded NATS server (unless opts.URL is set),
// connects, and creates or updates the events, ingest and rejected streams.
func StartBus(ctx context.Context, opts BusOptions) (*Bus, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.EventsMaxAge == 0 {
		opts.EventsMaxAge = DefaultEventsMaxAge
	}
	if opts.EventsMaxBytes == 0 {
		opts.EventsMaxBytes = DefaultEventsMaxBytes
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.ReadyWait == 0 {
		opts.ReadyWait = 30 * time.Second
	}
	b := &Bus{opts: opts, log: opts.Logger.With("component", "bus")}
	var err error
	if opts.URL == "" {
		err = b.startEmbedded()
	} else {
		err = b.connectExternal()
	}
	if err != nil {
		b.Stop()
		return nil, err
	}
	b.js, err = jetstream.New(b.nc)
	if err != nil {
		b.Stop()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if err := b.ensureStreams(ctx); err != nil {
		b.Stop()
		return nil, err
	}
	return b, nil
}

func (b *Bus) startEmbedded() error {
	internalPass, err := randomSecret()
	if err != nil {
		return err
	}
	sopts := &server.Options{
		ServerName:         "vigil",
		JetStream:          true,
		StoreDir:           b.opts.StoreDir,
		NoSigs:             true,
		SyncAlways:         b.opts.SyncAlways,
		MaxPayload:         8 << 20,
		DontListen:         true,
		JetStreamMaxMemory: 256 << 20,
		NoSystemAccount:    true,
		Users: []*server.User{{
			Username: "vigil",
			Password: internalPass,
		}},
	}
	if l := b.opts.ClientListen; l != "" && l != "off" {
		host, port, err := splitHostPort(l)
		if err != nil {
			return fmt.Errorf("nats listen %q: %w", l, err)
		}
		sopts.DontListen = false
		sopts.Host, sopts.Port = host, port
		if b.opts.ClientPassword != "" {
			sopts.Users = append(sopts.Users, &server.User{
				Username:    ClientUser,
				Password:    b.opts.ClientPassword,
				Permissions: ClientPermissions(),
			})
		}
	}
	if err := os.MkdirAll(b.opts.StoreDir, 0o700); err != nil {
		return fmt.Errorf("create store dir: %w", err)
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return fmt.Errorf("embedded nats: %w", err)
	}
	srv.SetLoggerV2(&natsLogger{log: b.opts.Logger.With("component", "nats")}, false, false, false)
	b.srv = srv
	go srv.Start()
	if !srv.ReadyForConnections(b.opts.ReadyWait) {
		return errors.New("embedded nats: not ready for connections")
	}
	if !sopts.DontListen {
		if addr, ok := srv.Addr().(*net.TCPAddr); ok {
			b.clientURL = "nats://" + net.JoinHostPort(addr.IP.String(), strconv.Itoa(addr.Port))
		}
	}
	nc, err := nats.Connect("", nats.InProcessServer(srv), nats.UserInfo("vigil", internalPass),
		nats.Name("vigil"), nats.CustomInboxPrefix(InternalInboxPrefix), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect in-process: %w", err)
	}
	b.nc = nc
	return nil
}

func (b *Bus) connectExternal() error {
	o := []nats.Option{nats.Name("vigil"), nats.MaxReconnects(-1), nats.CustomInboxPrefix(InternalInboxPrefix)}
	if b.opts.Creds != "" {
		o = append(o, nats.UserCredentials(b.opts.Creds))
	}
	if b.opts.User != "" {
		o = append(o, nats.UserInfo(b.opts.User, b.opts.Password))
	}
	if b.opts.CA != "" {
		o = append(o, nats.RootCAs(b.opts.CA))
	}
	if b.opts.CertFile != "" || b.opts.KeyFile != "" {
		o = append(o, nats.ClientCert(b.opts.CertFile, b.opts.KeyFile))
	}
	if b.opts.ConnectTimeout > 0 {
		o = append(o, nats.Timeout(b.opts.ConnectTimeout))
	}
	nc, err := nats.Connect(b.opts.URL, o...)
	if err != nil {
		return fmt.Errorf("connect %s: %w", redactURL(b.opts.URL), err)
	}
	b.nc = nc
	return nil
}

// ClientPermissions are the rights of the credentials vigil writes for users:
// subscribe to events, publish to ingest, and nothing else (no KV, no
// JetStream API, no vigil inboxes).
func ClientPermissions() *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{IngestPrefix + ".>"}},
		Subscribe: &server.SubjectPermission{Allow: []string{EventsPrefix + ".>", "_INBOX.>"}},
	}
}

func (b *Bus) ensureStreams(ctx context.Context) error {
	cfgs := []jetstream.StreamConfig{{
		Name:        EventsStream,
		Description: "vigil events",
		Subjects:    []string{JournalPrefix + ".>"},
		RePublish:   &jetstream.RePublish{Source: JournalPrefix + ".>", Destination: EventsPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    b.opts.Replicas,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      b.opts.EventsMaxAge,
		MaxBytes:    b.opts.EventsMaxBytes,
		MaxMsgSize:  MaxEventSize + 64<<10,
		Duplicates:  b.dupWindow(),
		AllowDirect: true,
	}, {
		Name:        IngestStream,
		Description: "events published by NATS clients, waiting for validation",
		Subjects:    []string{IngestPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    b.opts.Replicas,
		Retention:   jetstream.WorkQueuePolicy,
		Discard:     jetstream.DiscardNew,
		MaxAge:      24 * time.Hour,
		MaxBytes:    256 << 20,
		MaxMsgSize:  MaxEventSize + 64<<10,
		Duplicates:  b.dupWindow(),
	}, {
		Name:        RejectedStream,
		Description: "ingested messages that failed validation, with the reason",
		Subjects:    []string{RejectedPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    b.opts.Replicas,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      b.opts.EventsMaxAge,
		MaxBytes:    64 << 20,
		AllowDirect: true,
	}}
	for _, cfg := range cfgs {
		s, err := b.js.CreateOrUpdateStream(ctx, cfg)
		if err != nil {
			return fmt.Errorf("stream %s: %w", cfg.Name, err)
		}
		if cfg.Name == EventsStream {
			b.events = s
		}
	}
	return nil
}

// dupWindow is the streams' duplicate window.
func (b *Bus) dupWindow() time.Duration {
	if b.opts.DuplicateWindow > 0 {
		return b.opts.DuplicateWindow
	}
	return DuplicateWindow
}

// Conn returns vigil's own NATS connection.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// JetStream returns vigil's JetStream context.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// ClientURL returns the embedded server's client URL, or "" when it has no
// client port.
func (b *Bus) ClientURL() string { return b.clientURL }

// Embedded reports whether the bus runs its own NATS server.
func (b *Bus) Embedded() bool { return b.srv != nil }

// Ready returns nil when JetStream answers.
func (b *Bus) Ready() error {
	if b.nc == nil || !b.nc.IsConnected() {
		return errors.New("nats: not connected")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := b.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	return nil
}

// Publish stores ev in the events stream and returns once JetStream has
// acknowledged it. The CloudEvents id is the dedup key.
func (b *Bus) Publish(ctx context.Context, ev *Event) (PublishResult, error) {
	f, err := b.PublishAsync(ev)
	if err != nil {
		return PublishResult{}, err
	}
	select {
	case ack := <-f.Ok():
		return PublishResult{Seq: ack.Sequence, Duplicate: ack.Duplicate}, nil
	case err := <-f.Err():
		return PublishResult{}, fmt.Errorf("publish %s: %w", ev.ID, err)
	case <-ctx.Done():
		return PublishResult{}, ctx.Err()
	}
}

// PublishBatch stores evs with pipelined publishes and returns once each is
// acknowledged. Every event is encoded and checked before any is sent; on a
// later error some of evs may be stored, and publishing the same events
// again is safe, as their ids deduplicate them.
func (b *Bus) PublishBatch(ctx context.Context, evs []*Event) ([]PublishResult, error) {
	msgs := make([]*nats.Msg, len(evs))
	for i, ev := range evs {
		msg, err := EncodeMsg(ev)
		if err != nil {
			var fe *FieldError
			if errors.As(err, &fe) {
				return nil, &FieldError{Field: fmt.Sprintf("[%d].%s", i, fe.Field), Message: fe.Message}
			}
			return nil, err
		}
		msgs[i] = msg
	}
	futures := make([]jetstream.PubAckFuture, len(evs))
	for i, msg := range msgs {
		f, err := b.PublishMsgAsync(evs[i].ID, msg)
		if err != nil {
			return nil, err
		}
		futures[i] = f
	}
	out := make([]PublishResult, len(evs))
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			out[i] = PublishResult{Seq: ack.Sequence, Duplicate: ack.Duplicate}
		case err := <-f.Err():
			return nil, fmt.Errorf("publish %s: %w", evs[i].ID, err)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return out, nil
}

// PublishAsync starts storing ev; the future reports JetStream's ack.
func (b *Bus) PublishAsync(ev *Event) (jetstream.PubAckFuture, error) {
	msg, err := EncodeMsg(ev)
	if err != nil {
		return nil, err
	}
	return b.PublishMsgAsync(ev.ID, msg)
}

// EncodeMsg makes the stored message of ev and checks its size, for
// producers that encode ahead of PublishMsgAsync.
func EncodeMsg(ev *Event) (*nats.Msg, error) {
	data, err := ev.Marshal()
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", ev.ID, err)
	}
	if len(data) > MaxEventSize {
		return nil, &FieldError{Field: "data", Message: fmt.Sprintf("event is %d bytes, over the %d-byte limit", len(data), MaxEventSize)}
	}
	return &nats.Msg{Subject: ev.journalSubject(), Data: data, Header: nats.Header{}}, nil
}

// PublishMsgAsync starts storing msg, made by EncodeMsg from the event
// whose id is id; the future reports JetStream's ack.
func (b *Bus) PublishMsgAsync(id string, msg *nats.Msg) (jetstream.PubAckFuture, error) {
	f, err := b.js.PublishMsgAsync(msg, jetstream.WithMsgID(id), jetstream.WithExpectStream(EventsStream))
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", id, err)
	}
	return f, nil
}

// Stop closes the connection and shuts the embedded server down. It is
// idempotent.
func (b *Bus) Stop() {
	b.stopOnce.Do(func() {
		if b.nc != nil {
			_ = b.nc.Drain()
			b.nc.Close()
		}
		if b.srv != nil {
			b.srv.Shutdown()
			b.srv.WaitForShutdown()
		}
	})
}

func splitHostPort(hp string) (string, int, error) {
	host, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

func redactURL(u string) string {
	var parts []string
	for _, one := range strings.Split(u, ",") {
		pu, err := url.Parse(strings.TrimSpace(one))
		if err != nil || pu.User == nil {
			parts = append(parts, one)
			continue
		}
		pu.User = url.User(pu.User.Username())
		parts = append(parts, pu.String())
	}
	return strings.Join(parts, ",")
}

func randomSecret() (string, error) {
	var buf [24]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(buf[:]), nil
}

// RandomSecret returns 192 random bits, base64url-encoded.
func RandomSecret() (string, error) { return randomSecret() }

// natsLogger adapts the embedded server's logger to slog.
type natsLogger struct{ log *slog.Logger }

func (l *natsLogger) Noticef(format string, v ...any) {
	l.log.Debug("nats server", "detail", fmt.Sprintf(format, v...))
}

func (l *natsLogger) Warnf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if strings.HasPrefix(msg, "Plaintext passwords detected") {
		// The passwords are random and live only in this process and in
		// the 0600 nats.url file; bcrypt would slow every start.
		l.log.Debug("nats server", "detail", msg)
		return
	}
	l.log.Warn("nats server", "detail", msg)
}

func (l *natsLogger) Fatalf(format string, v ...any) {
	l.log.Error("nats server fatal", "detail", fmt.Sprintf(format, v...))
}

func (l *natsLogger) Errorf(format string, v ...any) {
	l.log.Error("nats server", "detail", fmt.Sprintf(format, v...))
}

func (l *natsLogger) Debugf(string, ...any) {}
func (l *natsLogger) Tracef(string, ...any) {}
