package python

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// SDK is the vigil Python package, embedded in the binary.
//
//go:embed vigil/*.py
var SDK embed.FS

// Install writes the SDK into dir (dir/vigil/...), readable by everyone, so
// that PYTHONPATH=dir imports it. Existing files are replaced.
func Install(dir string) error {
	return fs.WalkDir(SDK, "vigil", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, path)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := SDK.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return fmt.Errorf("install sdk: %w", err)
		}
		return nil
	})
}
