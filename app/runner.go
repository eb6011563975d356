package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/controller"
	"github.com/vigilhq/vigil/events"
	"github.com/vigilhq/vigil/runner"
)

// tokenIssuer gives each execution its own script token: the execution id
// signed with a key derived from the secret key.
type tokenIssuer struct{ api *controller.API }

func (t *tokenIssuer) Issue(_ context.Context, execution string, _ time.Duration) (string, func(), error) {
	if t.api == nil {
		return "", nil, errors.New("the API is not ready")
	}
	// An execution token is signed, not stored: it works while the
	// execution runs, so there is nothing to revoke.
	tok := t.api.ExecutionToken(execution)
	if tok == "" {
		return "", nil, errors.New("no key for execution tokens")
	}
	return tok, func() {}, nil
}

// startRunner prepares the runner and the API's unix socket that runs
// without a network reach the API through.
func startRunner(ctx context.Context, opts Options, bus *events.Bus, store *config.Store, issuer *tokenIssuer, apiURL string, log *slog.Logger) (*runner.Runner, net.Listener, error) {
	runDir := opts.RunDir
	if runDir == "" {
		// One directory per data dir, so two instances on a host do not meet.
		abs, _ := filepath.Abs(opts.DataDir)
		sum := sha256.Sum256([]byte(abs))
		runDir = filepath.Join("/run/vigil-runs", hex.EncodeToString(sum[:4]))
		if err := os.MkdirAll(runDir, 0o755); err != nil {
			runDir = filepath.Join("/var/tmp/vigil-runs", hex.EncodeToString(sum[:4]))
		}
	}
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("run dir: %w", err)
	}
	sock := filepath.Join(runDir, "api.sock")
	_ = os.Remove(sock)
	sockLn, err := net.Listen("unix", sock)
	if err != nil {
		return nil, nil, fmt.Errorf("api socket: %w", err)
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		sockLn.Close()
		return nil, nil, fmt.Errorf("api socket: %w", err)
	}
	r, err := runner.New(ctx, runner.Options{
		NC: bus.Conn(), JS: bus.JetStream(), Store: store, Events: bus, Tokens: issuer, Logger: log,
		DataDir: opts.DataDir, RunDir: runDir, APIURL: apiURL, APISocket: sock, Version: opts.Version,
		PoolSize: opts.RunnerPoolSize, Grace: opts.ShutdownTimeout, NoWarmPool: opts.NoWarmPool,
		CgroupParent: cgroupParent(opts), RemoveCgroupParent: true,
	})
	if err != nil {
		sockLn.Close()
		return nil, nil, err
	}
	return r, sockLn, nil
}

// cgroupParent is the cgroup of this instance's runs: the option, else
// one named after the data directory, so that two instances on a host
// (each with its own data directory) never sweep each other's runs.
func cgroupParent(opts Options) string {
	if opts.CgroupParent != "" {
		return opts.CgroupParent
	}
	dir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		dir = opts.DataDir
	}
	sum := sha256.Sum256([]byte(dir))
	return "vigil-" + hex.EncodeToString(sum[:4])
}
