package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/vigilhq/vigil/actions"
	"github.com/vigilhq/vigil/autoscale"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/controller"
	"github.com/vigilhq/vigil/dataplane"
	"github.com/vigilhq/vigil/events"
	"github.com/vigilhq/vigil/runner"
	"github.com/vigilhq/vigil/sources/schedule"
	"github.com/vigilhq/vigil/sources/webhook"
)

// Files in the data dir.
const (
	AdminTokenFile = "admin.token"
	NATSURLFile    = "nats.url"
	AddrFile       = "addr"
	SecretKeyFile  = "secret.key"
	LockFile       = "vigil.lock"
	JetStreamDir   = "jetstream"
)

// ConfigUser is the updated_by of objects applied from --config files; prune
// deletes only objects whose last writer it is.
const ConfigUser = "config-file"

// FaultCommitDelayEnv names an environment variable: set to a duration, it
// makes every batch write wait that long between staging and commit. Crash
// tests use it to kill the process mid-apply; never set it in production.
const FaultCommitDelayEnv = "VIGIL_FAULT_COMMIT_DELAY"

func (o Options) withDefaults() Options {
	if o.DataDir == "" {
		o.DataDir = "./vigil-data"
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:8480"
	}
	if o.NATSListen == "" {
		o.NATSListen = "127.0.0.1:4222"
	}
	if o.SecretKeyFile == "" {
		o.SecretKeyFile = filepath.Join(o.DataDir, SecretKeyFile)
	}
	if o.EventsMaxAge == 0 {
		o.EventsMaxAge = events.DefaultEventsMaxAge
	}
	if o.EventsMaxBytes == 0 {
		o.EventsMaxBytes = events.DefaultEventsMaxBytes
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	return o
}

func (o Options) validate() error {
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if o.NATSURL != "" && o.NATSListen != "127.0.0.1:4222" && o.NATSListen != "off" {
		return errors.New("--nats-listen applies to the embedded server; it cannot be used with --nats-url")
	}
	if o.NATSReplicas < 0 || o.NATSReplicas > 5 {
		return errors.New("--nats-replicas must be between 1 and 5")
	}
	if o.NATSReplicas > 1 && o.NATSURL == "" {
		return errors.New("--nats-replicas needs --nats-url: the embedded server is a single node")
	}
	if o.EventsMaxAge < 0 || o.EventsMaxBytes < 0 {
		return errors.New("--events-max-age and --events-max-bytes must not be negative")
	}
	if o.CgroupParent != "" && !cgroupParentRE.MatchString(o.CgroupParent) {
		return fmt.Errorf("--cgroup-parent %q: want a relative path of [A-Za-z0-9_.-] components, such as vigil or vigil/prod", o.CgroupParent)
	}
	return nil
}

var cgroupParentRE = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$`)

// Run starts every role of vigil in this process and blocks until ctx ends,
// then drains and stops. SIGHUP reloads the --config files.
func Run(ctx context.Context, opts Options) error {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return err
	}
	start := time.Now()
	log := opts.Logger
	// Catch SIGHUP from the start: its default action would end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	unlock, err := lockDataDir(opts.DataDir)
	if err != nil {
		return err
	}
	defer unlock()

	cipher, err := config.LoadOrCreateKey(opts.SecretKeyFile)
	if err != nil {
		return err
	}

	busOpts := events.BusOptions{
		StoreDir:       filepath.Join(opts.DataDir, JetStreamDir),
		SyncAlways:     opts.SyncAlways,
		URL:            opts.NATSURL,
		Creds:          opts.NATSCreds,
		User:           opts.NATSUser,
		Password:       opts.NATSPassword,
		CA:             opts.NATSCA,
		CertFile:       opts.NATSCert,
		KeyFile:        opts.NATSKey,
		EventsMaxAge:   opts.EventsMaxAge,
		EventsMaxBytes: opts.EventsMaxBytes,
		Replicas:       opts.NATSReplicas,
		Logger:         log,
	}
	if opts.NATSURL == "" && opts.NATSListen != "off" {
		busOpts.ClientListen = opts.NATSListen
		if busOpts.ClientPassword, err = clientPassword(opts.DataDir); err != nil {
			return err
		}
	}
	bus, err := events.StartBus(ctx, busOpts)
	if err != nil {
		return err
	}
	defer bus.Stop()

	storeOpts := config.StoreOptions{Cipher: cipher, Logger: log, Replicas: opts.NATSReplicas}
	if d := os.Getenv(FaultCommitDelayEnv); d != "" {
		delay, err := time.ParseDuration(d)
		if err != nil {
			return fmt.Errorf("%s: %w", FaultCommitDelayEnv, err)
		}
		storeOpts.BeforeCommit = func() {
			log.Warn("fault injection: pausing before commit", "delay", delay)
			time.Sleep(delay)
		}
	}
	store, err := config.OpenStore(ctx, bus.Conn(), bus.JetStream(), storeOpts)
	if err != nil {
		return err
	}
	emitter := config.NewEmitter(store, bus, log)
	if err := emitter.Start(ctx); err != nil {
		return err
	}
	defer emitter.Stop()
	// The ids producers give, remembered beyond the duplicate window,
	// serve both the NATS ingest and the API.
	validator := events.NewValidator(bus, log, nil)
	if validator.IDs, err = events.OpenIDs(ctx, bus.JetStream(), opts.NATSReplicas); err != nil {
		return err
	}
	if err := validator.Start(ctx); err != nil {
		return err
	}
	defer validator.Stop()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := newMetrics(reg, bus)
	if err != nil {
		return err
	}
	if err := m.start(bus); err != nil {
		return err
	}
	defer m.stop()

	tokenPath, created, err := ensureAdminToken(ctx, store, opts.DataDir, false)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", opts.Listen, err)
	}
	scheme := "http"
	var tlsConf *tls.Config
	if opts.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(opts.TLSCert, opts.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("tls: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
		ln = tls.NewListener(ln, tlsConf)
		scheme = "https"
	}
	var hooksLn net.Listener
	if opts.HooksListen != "" {
		if hooksLn, err = net.Listen("tcp", opts.HooksListen); err != nil {
			ln.Close()
			return fmt.Errorf("listen %s: %w", opts.HooksListen, err)
		}
		defer hooksLn.Close()
		if tlsConf != nil {
			hooksLn = tls.NewListener(hooksLn, tlsConf)
		}
	}
	apiURL := scheme + "://" + ln.Addr().String()

	issuer := &tokenIssuer{}
	var run *runner.Runner
	var sockLn net.Listener
	if !opts.NoRunner {
		run, sockLn, err = startRunner(ctx, opts, bus, store, issuer, apiURL, log)
		if err != nil {
			ln.Close()
			return err
		}
		defer sockLn.Close()
		// Also when vigil does not get to start: the warm pool and the
		// shims stop, and the parent cgroup goes.
		defer run.Stop(context.Background())
	}

	copts := controller.Options{
		Store: store, Bus: bus, Logger: log, Registerer: reg, Gatherer: reg, EventIDs: validator.IDs,
		MetricsPublic: opts.MetricsPublic, Version: opts.Version,
		ExecTokenKey: cipher.Derive("execution-tokens"),
	}
	if run != nil {
		copts.Runner = run
	}
	var rules *actions.Service
	var scaler *autoscale.Manager
	if !opts.NoRules {
		scaler, err = autoscale.New(ctx, autoscale.Options{
			Store: store, JS: bus.JetStream(), Events: bus, Replicas: opts.NATSReplicas, Logger: log,
		})
		if err != nil {
			ln.Close()
			return err
		}
		ropts := actions.ServiceOptions{
			JS: bus.JetStream(), Store: store, Events: bus, Logger: log, Autoscale: autoscaler{scaler},
			Replicas: opts.NATSReplicas, Version: opts.Version, Registerer: reg,
		}
		if run != nil {
			ropts.Scripts = run
		}
		if rules, err = actions.NewService(ctx, ropts); err != nil {
			ln.Close()
			return err
		}
		copts.Alerts = rules
	}
	hooks, err := webhook.New(webhook.Options{
		Store: store, Secrets: store, Publisher: bus, JS: bus.JetStream(),
		Replicas: opts.NATSReplicas, Logger: log, Registerer: reg,
	})
	if err != nil {
		ln.Close()
		return err
	}
	copts.Hooks = hooks
	sopts := schedule.Options{
		Store: store, Publisher: bus, JS: bus.JetStream(), Replicas: opts.NATSReplicas,
		Logger: log, Registerer: reg,
	}
	if run != nil {
		sopts.Scripts = run
	}
	sched, err := schedule.New(sopts)
	if err != nil {
		ln.Close()
		return err
	}
	copts.Status = sched
	api, err := controller.New(copts)
	if err != nil {
		ln.Close()
		return err
	}
	if err := api.Start(ctx); err != nil {
		ln.Close()
		return err
	}
	defer api.Stop(context.Background())
	issuer.api = api

	if len(opts.ConfigPaths) > 0 {
		if err := loadConfig(ctx, store, opts.ConfigPaths, opts.ConfigPrune, log); err != nil {
			ln.Close()
			return err
		}
	}

	srv := &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if sockLn != nil {
		go func() { _ = srv.Serve(sockLn) }()
	}
	if run != nil {
		if err := run.Start(ctx); err != nil {
			ln.Close()
			return err
		}
		defer run.Stop(context.Background()) // before the API stops (the one above is then a no-op)
	}
	if rules != nil {
		if err := scaler.Start(ctx); err != nil {
			ln.Close()
			return err
		}
		defer scaler.Stop()
		if err := rules.Start(ctx); err != nil {
			ln.Close()
			return err
		}
		defer rules.Stop()
	}
	if err := hooks.Start(ctx); err != nil {
		ln.Close()
		return err
	}
	defer hooks.Stop()
	if err := sched.Start(ctx); err != nil {
		ln.Close()
		return err
	}
	defer sched.Stop()
	if !opts.NoDataPlane {
		proxy := dataplane.New(dataplane.Options{
			Store: store, Logger: log, Events: bus, Registerer: reg, DrainTimeout: opts.ShutdownTimeout,
			Serving: servingProcs(opts.Procs, log),
			Certs: func(ctx context.Context, name string) ([]byte, []byte, error) {
				vals, err := config.ReadSecret(ctx, store, name)
				if err != nil {
					return nil, nil, err
				}
				cert, key := vals["cert"], vals["key"]
				if cert == "" || key == "" {
					return nil, nil, fmt.Errorf("secret %s: needs the keys cert and key (PEM)", name)
				}
				return []byte(cert.Reveal()), []byte(key.Reveal()), nil
			},
		})
		if err := proxy.Start(ctx); err != nil {
			ln.Close()
			return err
		}
		defer proxy.Stop()
	}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()
	hooksURL := ""
	var hooksSrv *http.Server
	if hooksLn != nil {
		hooksURL = scheme + "://" + hooksLn.Addr().String()
		hooksSrv = &http.Server{
			Handler:           api.HooksHandler(),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       120 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		go func() { srvErr <- hooksSrv.Serve(hooksLn) }()
	}

	// The addr file comes last: tools wait for it as the sign of readiness.
	if bus.ClientURL() != "" {
		if err := writeNATSURL(opts.DataDir, bus.ClientURL(), busOpts.ClientPassword); err != nil {
			return err
		}
	}
	if bus.ClientURL() == "" {
		// No client port: credentials from an earlier run would mislead.
		_ = os.Remove(filepath.Join(opts.DataDir, NATSURLFile))
	}
	if err := writeAddrFile(opts.DataDir, apiURL, bus.ClientURL(), hooksURL); err != nil {
		return err
	}
	defer os.Remove(filepath.Join(opts.DataDir, AddrFile))
	log.Info("vigil ready", "api", apiURL, "nats", bus.ClientURL(), "data_dir", opts.DataDir,
		"ready_ms", time.Since(start).Milliseconds(), "version", opts.Version)
	fmt.Fprintf(opts.Stdout, "vigil %s is ready\n  API:          %s\n", opts.Version, apiURL)
	if created {
		fmt.Fprintf(opts.Stdout, "  admin token:  %s (new)\n", tokenPath)
	} else {
		fmt.Fprintf(opts.Stdout, "  admin token:  %s\n", tokenPath)
	}
	if bus.ClientURL() != "" {
		fmt.Fprintf(opts.Stdout, "  NATS:         %s (credentials in %s)\n", bus.ClientURL(), filepath.Join(opts.DataDir, NATSURLFile))
	}
	if hooksURL != "" {
		fmt.Fprintf(opts.Stdout, "  webhooks:     %s/hooks/<name>\n", hooksURL)
	}

	for {
		select {
		case <-hup:
			if len(opts.ConfigPaths) == 0 {
				log.Info("SIGHUP without --config: nothing to reload")
				continue
			}
			if err := loadConfig(ctx, store, opts.ConfigPaths, opts.ConfigPrune, log); err != nil {
				log.Error("reload config", "err", err)
			}
		case err := <-srvErr:
			return fmt.Errorf("http server: %w", err)
		case <-ctx.Done():
			log.Info("stopping")
			sctx, cancel := context.WithTimeout(context.Background(), opts.ShutdownTimeout)
			defer cancel()
			if rules != nil {
				rules.Stop() // deliveries in hand are redelivered
			}
			if run != nil {
				run.Stop(sctx) // running scripts may still call the API
			}
			api.Stop(sctx) // ends event streams, which would hold Shutdown
			if err := srv.Shutdown(sctx); err != nil {
				log.Warn("http shutdown", "err", err)
				srv.Close()
			}
			if hooksSrv != nil {
				if err := hooksSrv.Shutdown(sctx); err != nil {
					hooksSrv.Close()
				}
			}
			return nil
		}
	}
}

// loadConfig applies the objects in paths as one batch and, with prune,
// deletes objects that an earlier load wrote and the files no longer hold.
func loadConfig(ctx context.Context, store *config.Store, paths []string, prune bool, log *slog.Logger) error {
	objs, err := config.ReadObjectFiles(paths)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	res, err := store.Apply(ctx, objs, config.ApplyOptions{User: ConfigUser})
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	changed := 0
	for _, r := range res {
		if r.Action != "unchanged" {
			changed++
		}
	}
	pruned := 0
	if prune {
		keep := make(map[string]bool, len(res))
		for _, r := range res {
			keep[r.Kind+"/"+r.Name] = true
		}
		var refs []config.Ref
		for _, k := range store.Registry().All() {
			if k.Internal {
				continue
			}
			list, err := store.List(ctx, k.Name)
			if err != nil {
				return fmt.Errorf("config prune: %w", err)
			}
			for _, o := range list {
				if o.Metadata.UpdatedBy == ConfigUser && !keep[o.Kind+"/"+o.Name] {
					refs = append(refs, config.Ref{Kind: o.Kind, Name: o.Name, Revision: o.Metadata.Revision})
				}
			}
		}
		if len(refs) > 0 {
			if _, err := store.Delete(ctx, refs, config.DeleteOptions{User: ConfigUser, IgnoreMissing: true}); err != nil {
				return fmt.Errorf("config prune: %w", err)
			}
			pruned = len(refs)
		}
	}
	log.Info("config loaded", "objects", len(objs), "changed", changed, "pruned", pruned)
	return nil
}

// lockDataDir takes an exclusive lock on the data dir so that two processes
// never share one store.
func lockDataDir(dir string) (func(), error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data dir %s is in use by another vigil process", dir)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// clientPassword returns the password of the NATS client user, kept in the
// nats.url file across restarts.
func clientPassword(dataDir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dataDir, NATSURLFile))
	if err == nil {
		if u, err := url.Parse(strings.TrimSpace(string(data))); err == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok && pw != "" {
				return pw, nil
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", NATSURLFile, err)
	}
	return events.RandomSecret()
}

func writeNATSURL(dataDir, clientURL, password string) error {
	u, err := url.Parse(clientURL)
	if err != nil {
		return fmt.Errorf("nats url: %w", err)
	}
	u.User = url.UserPassword(events.ClientUser, password)
	return writeFileAtomic(filepath.Join(dataDir, NATSURLFile), []byte(u.String()+"\n"), 0o600)
}

func writeAddrFile(dataDir, apiURL, natsURL, hooksURL string) error {
	content := "api=" + apiURL + "\n"
	if natsURL != "" {
		content += "nats=" + natsURL + "\n"
	}
	if hooksURL != "" {
		content += "hooks=" + hooksURL + "\n"
	}
	return writeFileAtomic(filepath.Join(dataDir, AddrFile), []byte(content), 0o644)
}

// writeFileAtomic writes via a temporary file and a rename.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// proxyProcs is GOMAXPROCS while virtual services serve on a process that
// would have n Ps: twice n. The proxy's socket calls keep their P (see
// dataplane/rawio.go), so a write the kernel deschedules (on loopback the
// peer it wakes often takes the CPU) holds a P meanwhile; spare Ps let the
// other threads run the goroutines it holds. On 2 CPUs shared with wrk and
// the backend, `make bench-proxy` gave 0.86× nginx+Lua with 4 Ps against
// 0.79× with 2. Without virtual services the spare Ps only spin: the
// runner's executions cost ~3% more CPU with them.
func proxyProcs(n int) int { return 2 * n }

// servingProcs returns the data plane's Serving hook: it sets GOMAXPROCS
// through procs (nil: never) to proxyProcs of the number the process
// started with while any virtual service serves, and back when none does.
func servingProcs(procs func(int) int, log *slog.Logger) func(int) {
	if procs == nil {
		return nil
	}
	base := procs(0)
	return func(serving int) {
		want := base
		if serving > 0 {
			want = proxyProcs(base)
		}
		if old := procs(want); old != want {
			log.Info("GOMAXPROCS set for the virtual services serving", "virtual_services", serving, "cpus", base, "gomaxprocs", want)
		}
	}
}
