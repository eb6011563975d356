package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/controller"
	"github.com/vigilhq/vigil/events"
)

// AdminTokenName names the token created at first start.
const AdminTokenName = "admin"

// ensureAdminToken creates the admin token on first start (or replaces it
// when reset is true) and writes its value to <dataDir>/admin.token, mode
// 0600. It reports the file's path and whether a token was created.
func ensureAdminToken(ctx context.Context, store *config.Store, dataDir string, reset bool) (string, bool, error) {
	path := filepath.Join(dataDir, AdminTokenFile)
	if !reset {
		_, err := store.Get(ctx, controller.TokenKind, AdminTokenName)
		if err == nil {
			if _, statErr := os.Stat(path); errors.Is(statErr, os.ErrNotExist) {
				return path + " (missing: run `vigil token reset-admin`)", false, nil
			}
			return path, false, nil
		}
		if !errors.Is(err, config.ErrNotFound) {
			return "", false, fmt.Errorf("admin token: %w", err)
		}
	}
	plain, hash, err := controller.NewToken()
	if err != nil {
		return "", false, err
	}
	obj := controller.TokenObject(AdminTokenName, string(controller.RoleAdmin), hash, "vigil", time.Time{}, "created by vigil serve; reset with `vigil token reset-admin`")
	if !reset {
		zero := uint64(0)
		obj.Metadata.Revision = &zero // only if no other process created it meanwhile
	}
	if _, err := store.Apply(ctx, []*config.Object{obj}, config.ApplyOptions{User: "vigil", Internal: true}); err != nil {
		return "", false, fmt.Errorf("admin token: %w", err)
	}
	if err := writeFileAtomic(path, []byte(plain+"\n"), 0o600); err != nil {
		return "", false, err
	}
	return path, true, nil
}

// ResetAdminToken replaces the admin token of the data dir while vigil is
// stopped, and writes the new value to <dataDir>/admin.token.
func ResetAdminToken(ctx context.Context, dataDir string, stdout io.Writer) error {
	if _, err := os.Stat(filepath.Join(dataDir, JetStreamDir)); err != nil {
		return fmt.Errorf("%s holds no vigil data: %w", dataDir, err)
	}
	unlock, err := lockDataDir(dataDir)
	if err != nil {
		return fmt.Errorf("%w; stop it first", err)
	}
	defer unlock()
	bus, err := events.StartBus(ctx, events.BusOptions{StoreDir: filepath.Join(dataDir, JetStreamDir), ClientListen: "off"})
	if err != nil {
		return err
	}
	defer bus.Stop()
	store, err := config.OpenStore(ctx, bus.Conn(), bus.JetStream(), config.StoreOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	path, _, err := ensureAdminToken(ctx, store, dataDir, true)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "new admin token written to %s\n", path)
	return nil
}
