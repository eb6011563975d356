package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/vigilhq/vigil/config"
)

// enumValue is a string flag that takes one of a fixed set of values, so
// that a wrong value is a usage error at parse time.
type enumValue struct {
	value   string
	allowed []string
	fold    bool // take the values in any case
}

func newEnum(def string, allowed ...string) *enumValue {
	return &enumValue{value: def, allowed: allowed}
}

// newFoldEnum is newEnum taking the values in any case; the value kept is
// spelt as in allowed.
func newFoldEnum(def string, allowed ...string) *enumValue {
	return &enumValue{value: def, allowed: allowed, fold: true}
}

func (v *enumValue) String() string { return v.value }
func (v *enumValue) Type() string   { return strings.Join(v.allowed, "|") }

func (v *enumValue) Set(s string) error {
	for _, a := range v.allowed {
		if s == a || (v.fold && strings.EqualFold(s, a)) {
			v.value = a
			return nil
		}
	}
	return fmt.Errorf("must be one of %s", strings.Join(v.allowed, ", "))
}

// sizeValue is a byte count written as a plain number or with a suffix:
// Ki, Mi, Gi, Ti (powers of 1024) or k, M, G, T (powers of 1000).
type sizeValue struct{ n *int64 }

func parseSize(s string) (int64, error) { return config.ParseQuantity(s) }

func formatSize(n int64) string { return config.FormatQuantity(n) }

func (v sizeValue) String() string {
	if v.n == nil {
		return ""
	}
	return formatSize(*v.n)
}

func (v sizeValue) Type() string { return "size" }

func (v sizeValue) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*v.n = n
	return nil
}

// levelValue is a log level: debug, info, warn or error.
type levelValue struct{ level *slog.Level }

func (v levelValue) String() string {
	if v.level == nil {
		return ""
	}
	return strings.ToLower(v.level.String())
}

func (v levelValue) Type() string { return "debug|info|warn|error" }

func (v levelValue) Set(s string) error {
	switch strings.ToLower(s) {
	case "debug":
		*v.level = slog.LevelDebug
	case "info":
		*v.level = slog.LevelInfo
	case "warn", "warning":
		*v.level = slog.LevelWarn
	case "error":
		*v.level = slog.LevelError
	default:
		return errors.New("must be one of debug, info, warn, error")
	}
	return nil
}
