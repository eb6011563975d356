package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
)

// enumValue is a string flag that takes one of a fixed set of values, so
// that a wrong value is a usage error at parse time.
type enumValue struct {
	value   string
	allowed []string
}

func newEnum(def string, allowed ...string) *enumValue {
	return &enumValue{value: def, allowed: allowed}
}

func (v *enumValue) String() string { return v.value }
func (v *enumValue) Type() string   { return strings.Join(v.allowed, "|") }

func (v *enumValue) Set(s string) error {
	for _, a := range v.allowed {
		if s == a {
			v.value = s
			return nil
		}
	}
	return fmt.Errorf("must be one of %s", strings.Join(v.allowed, ", "))
}

// sizeValue is a byte count written as a plain number or with a suffix:
// Ki, Mi, Gi, Ti (powers of 1024) or k, M, G, T (powers of 1000).
type sizeValue struct{ n *int64 }

var sizeSuffixes = []struct {
	suffix string
	mult   int64
}{
	{"Ki", 1 << 10},
	{"Mi", 1 << 20},
	{"Gi", 1 << 30},
	{"Ti", 1 << 40},
	{"k", 1e3},
	{"K", 1e3},
	{"M", 1e6},
	{"G", 1e9},
	{"T", 1e12},
}

func parseSize(s string) (int64, error) {
	s = strings.TrimSuffix(strings.TrimSpace(s), "B") // 512MiB, 1GB, 100B
	num, mult := s, int64(1)
	for _, sf := range sizeSuffixes {
		if n, ok := strings.CutSuffix(s, sf.suffix); ok {
			num, mult = n, sf.mult
			break
		}
	}
	if num == "" {
		return 0, errors.New("want a size such as 1Gi, 512Mi or 1000000")
	}
	if n, err := strconv.ParseInt(num, 10, 64); err == nil {
		if n < 0 || (n > 0 && mult > math.MaxInt64/n) {
			return 0, errors.New("out of range")
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f*float64(mult) >= math.MaxInt64 {
		return 0, errors.New("want a size such as 1Gi, 512Mi or 1000000")
	}
	return int64(f * float64(mult)), nil
}

func formatSize(n int64) string {
	for _, sf := range []struct {
		suffix string
		mult   int64
	}{{"Ti", 1 << 40}, {"Gi", 1 << 30}, {"Mi", 1 << 20}, {"Ki", 1 << 10}} {
		if n != 0 && n%sf.mult == 0 {
			return strconv.FormatInt(n/sf.mult, 10) + sf.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

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
