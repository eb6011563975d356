package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a span of time written as a Go duration string ("60s", "5m")
// or as an integer number of seconds.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes the duration as a string such as "1m30s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON accepts "90s", "1m30s" or 90.
func (d *Duration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := ParseDuration(s)
		if err != nil {
			return err
		}
		*d = Duration(v)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("must be a duration such as \"60s\" or a number of seconds")
	}
	secs, err := n.Int64()
	if err != nil || secs < 0 || secs > math.MaxInt64/int64(time.Second) {
		return fmt.Errorf("must be a whole, non-negative number of seconds, got %s", n)
	}
	*d = Duration(time.Duration(secs) * time.Second)
	return nil
}

// ParseDuration parses a Go duration string, or a bare integer as seconds.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 || n > math.MaxInt64/int64(time.Second) {
			return 0, fmt.Errorf("duration %q out of range", s)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as \"60s\" or \"5m\"", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	return d, nil
}

// Quantity is a size in bytes written as a Kubernetes quantity ("256Mi",
// "1G", "512k") or as an integer number of bytes.
type Quantity int64

// MarshalJSON writes the size in the largest binary unit that divides it.
func (q Quantity) MarshalJSON() ([]byte, error) { return json.Marshal(FormatQuantity(int64(q))) }

// UnmarshalJSON accepts "256Mi" or 268435456.
func (q *Quantity) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	var s string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	} else {
		s = string(b)
	}
	v, err := ParseQuantity(s)
	if err != nil {
		return err
	}
	*q = Quantity(v)
	return nil
}

var quantitySuffixes = []struct {
	suffix string
	mult   int64
}{
	{"Ki", 1 << 10},
	{"Mi", 1 << 20},
	{"Gi", 1 << 30},
	{"Ti", 1 << 40},
	{"Pi", 1 << 50},
	{"k", 1e3},
	{"K", 1e3},
	{"M", 1e6},
	{"G", 1e9},
	{"T", 1e12},
	{"P", 1e15},
}

// ParseQuantity parses a non-negative Kubernetes-style quantity into bytes:
// a number with an optional suffix Ki, Mi, Gi, Ti, Pi (powers of 1024) or
// k, M, G, T, P (powers of 1000); a trailing "B" is allowed ("512MiB").
func ParseQuantity(s string) (int64, error) {
	s = strings.TrimSuffix(strings.TrimSpace(s), "B")
	num, mult := s, int64(1)
	for _, u := range quantitySuffixes {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	if num == "" {
		return 0, fmt.Errorf("%q is not a size such as \"256Mi\"", s)
	}
	if n, err := strconv.ParseInt(num, 10, 64); err == nil {
		if n < 0 || (mult > 1 && n > math.MaxInt64/mult) {
			return 0, fmt.Errorf("size %q out of range", s)
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a size such as \"256Mi\"", s)
	}
	v := f * float64(mult)
	if v < 0 || v >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q out of range", s)
	}
	return int64(math.Ceil(v)), nil
}

// FormatQuantity writes n bytes in the largest binary unit that divides it.
func FormatQuantity(n int64) string {
	for i := 4; i >= 0; i-- {
		u := quantitySuffixes[i]
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
