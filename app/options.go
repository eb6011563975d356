// Package app wires vigil's components into one process: the JetStream bus,
// the object store, the event validator and the HTTP API.
package app

import (
	"io"
	"log/slog"
	"time"
)

// Options configures [Run]. The zero value of every field is a safe default;
// defaults are filled in by [Options.withDefaults], never in the caller's copy.
type Options struct {
	// DataDir holds the JetStream store, the admin token, the NATS client
	// credentials, the secret key and the addr file. Default "./vigil-data".
	DataDir string
	// Listen is the HTTP API address. Default "127.0.0.1:8480"; port 0 picks one.
	Listen string
	// TLSCert and TLSKey serve the API over HTTPS when both are set.
	TLSCert, TLSKey string
	// HooksListen, when set, also serves the webhook receivers
	// (/hooks/{name}, nothing else) on this address, with the API's TLS,
	// so that they can face the internet while the API does not.
	HooksListen string
	// MetricsPublic serves /metrics without a token.
	MetricsPublic bool

	// NATSListen is the client address of the embedded NATS server.
	// Default "127.0.0.1:4222"; "off" disables the client port; port 0 picks one.
	NATSListen string
	// NATSURL connects to an existing NATS server or cluster instead of
	// embedding one. NATSCreds, NATSUser/NATSPassword, NATSCA, NATSCert and
	// NATSKey authenticate that connection.
	NATSURL                string
	NATSCreds              string
	NATSUser, NATSPassword string
	NATSCA                 string
	NATSCert, NATSKey      string

	// NATSReplicas is the replica count of vigil's streams and bucket on a
	// NATS cluster (--nats-url). Default 1.
	NATSReplicas int

	// SyncAlways makes the embedded JetStream fsync every write.
	SyncAlways bool

	// ConfigPaths are YAML/JSON files or directories applied at start and on
	// SIGHUP. ConfigPrune deletes objects that an earlier load applied and
	// that the files no longer hold.
	ConfigPaths []string
	ConfigPrune bool

	// SecretKeyFile holds the AES-256 key that encrypts Secrets at rest.
	// Default "<DataDir>/secret.key", created on first start.
	SecretKeyFile string

	// EventsMaxAge and EventsMaxBytes bound the events stream.
	// Defaults 7 days and 1 GiB.
	EventsMaxAge   time.Duration
	EventsMaxBytes int64

	// NoRunner turns the ControlScript runner off in this process.
	NoRunner bool
	// NoRules turns the rules engine and action delivery off in this
	// process.
	NoRules bool
	// NoDataPlane turns the reverse proxy (virtual services) off in this
	// process.
	NoDataPlane bool
	// Procs, when set, is runtime.GOMAXPROCS: while virtual services
	// serve, Run gives the Go scheduler two Ps per CPU (see proxyProcs in run.go),
	// and the number it had back when none does. nil leaves it alone.
	Procs func(n int) int
	// RunnerPoolSize bounds the scripts running at once. Default 8.
	RunnerPoolSize int
	// NoWarmPool starts every ControlScript in a fresh interpreter instead
	// of forking it from a warm one.
	NoWarmPool bool
	// CgroupParent is the cgroup that holds this instance's runs; at start
	// the runs' cgroups left in it are removed. Default
	// "vigil-<8 hex digits>" from the data directory's path, so that
	// instances with their own data directories never touch each other's.
	CgroupParent string
	// RunDir holds each run's files and the API's unix socket. Default
	// /run/vigil-runs.
	RunDir string

	// ShutdownTimeout bounds the drain on SIGTERM (running scripts get that
	// long to finish). Default 10s.
	ShutdownTimeout time.Duration

	// Logger receives structured logs. Default: JSON on Stderr.
	Logger *slog.Logger
	// Stdout receives the start-up banner (API address, admin token path).
	Stdout io.Writer
	// Version is reported by the API and in logs.
	Version string
}
