package cli

import (
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigilhq/vigil/app"
)

func (e *env) serveCmd() *cobra.Command {
	opts := app.Options{
		DataDir:         e.dataDir(),
		Listen:          "127.0.0.1:8480",
		NATSListen:      "127.0.0.1:4222",
		EventsMaxAge:    7 * 24 * time.Hour,
		EventsMaxBytes:  1 << 30,
		ShutdownTimeout: 10 * time.Second,
	}
	level := slog.LevelInfo
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the vigil server: API, embedded NATS and every role",
		Long: `Run the vigil server: the HTTP API, an embedded NATS server with JetStream
(or a connection to an existing one with --nats-url) and every role, in one
process. The data directory holds the JetStream store, the admin token
(admin.token, mode 0600), the NATS credentials for users, the secret key and
the addr file that client commands read.

SIGINT and SIGTERM stop the server, draining for up to --shutdown-timeout;
SIGHUP reloads the --config files. Logs are JSON on stderr.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := opts
			o.Logger = slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: level}))
			o.Stdout = e.stdout
			o.Version = versionString()
			if e.getenv("GOMAXPROCS") == "" {
				o.Procs = e.procs // two Ps per CPU while virtual services serve
			}
			return e.run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.DataDir, "data-dir", opts.DataDir, "directory for the JetStream store, the admin token, credentials and keys ($VIGIL_DATA_DIR)")
	f.StringVar(&opts.Listen, "listen", opts.Listen, "HTTP API address; port 0 picks a free one (written to <data-dir>/addr)")
	f.StringVar(&opts.HooksListen, "hooks-listen", "", "also serve the webhook receivers (/hooks/{name} only) on this address; port 0 picks one (written to <data-dir>/addr)")
	f.StringVar(&opts.TLSCert, "tls-cert", "", "PEM certificate file; with --tls-key the API serves HTTPS")
	f.StringVar(&opts.TLSKey, "tls-key", "", "PEM private key file for --tls-cert")
	f.BoolVar(&opts.MetricsPublic, "metrics-public", false, "serve /metrics without a token")
	f.StringVar(&opts.NATSListen, "nats-listen", opts.NATSListen, `client address of the embedded NATS server; "off" disables it; port 0 picks one`)
	f.StringVar(&opts.NATSURL, "nats-url", "", "connect to this NATS server or cluster instead of embedding one")
	f.StringVar(&opts.NATSCreds, "nats-creds", "", "NATS credentials file for --nats-url")
	f.StringVar(&opts.NATSUser, "nats-user", "", "NATS user for --nats-url")
	f.StringVar(&opts.NATSPassword, "nats-password", "", "NATS password for --nats-url")
	f.StringVar(&opts.NATSCA, "nats-ca", "", "PEM CA file to verify the NATS server")
	f.StringVar(&opts.NATSCert, "nats-cert", "", "PEM client certificate for NATS")
	f.StringVar(&opts.NATSKey, "nats-key", "", "PEM client key for NATS")
	f.BoolVar(&opts.NoRunner, "no-runner", false, "do not run ControlScripts in this process")
	f.BoolVar(&opts.NoRules, "no-rules", false, "do not run the rules engine or deliver alert actions in this process")
	f.BoolVar(&opts.NoDataPlane, "no-dataplane", false, "do not serve virtual services in this process")
	f.IntVar(&opts.RunnerPoolSize, "runner-pool-size", 8, "ControlScripts running at once")
	f.BoolVar(&opts.NoWarmPool, "no-warm-pool", false, "start every ControlScript in a fresh interpreter (slower; no fork server)")
	f.StringVar(&opts.CgroupParent, "cgroup-parent", "", "the cgroup holding this instance's runs, one per instance on a host (default vigil-<8 hex digits of the data directory's path>)")
	f.StringVar(&opts.RunDir, "run-dir", "", "directory for each run's files and the API's unix socket (default /run/vigil-runs/<id of the data dir>)")
	f.IntVar(&opts.NATSReplicas, "nats-replicas", 1, "replicas of vigil's streams and config bucket on a NATS cluster (with --nats-url)")
	f.BoolVar(&opts.SyncAlways, "sync-always", false, "fsync every JetStream write: slower, but nothing is lost on power loss")
	f.StringArrayVar(&opts.ConfigPaths, "config", nil, "YAML/JSON file or directory of objects to apply at start and on SIGHUP (repeatable)")
	f.BoolVar(&opts.ConfigPrune, "config-prune", false, "delete objects that an earlier --config load applied and the files no longer hold")
	f.StringVar(&opts.SecretKeyFile, "secret-key-file", "", "AES-256 key that encrypts Secrets at rest (default <data-dir>/secret.key)")
	f.DurationVar(&opts.EventsMaxAge, "events-max-age", opts.EventsMaxAge, "keep events this long")
	f.Var(sizeValue{&opts.EventsMaxBytes}, "events-max-bytes", "bound the events stream to this size (1Gi, 512Mi, bytes)")
	f.DurationVar(&opts.ShutdownTimeout, "shutdown-timeout", opts.ShutdownTimeout, "bound the drain on SIGINT or SIGTERM")
	f.Var(levelValue{&level}, "log-level", "log level: debug, info, warn or error")
	return cmd
}
