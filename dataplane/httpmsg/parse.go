package httpmsg

import (
	"bytes"
	"errors"
	"fmt"
)

// Errors of parsing; each wraps ErrMalformed.
var (
	ErrMalformed = errors.New("malformed HTTP message")
	// ErrIncomplete means the buffer does not hold a whole head yet.
	ErrIncomplete = errors.New("incomplete HTTP head")
)

// HeadEnd returns the length of the head at the start of b, through the
// blank line that ends it (CRLF CRLF, or bare LFs), or -1 when b does not
// hold a whole head.
func HeadEnd(b []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		switch {
		case i < len(b) && b[i] == '\n':
			return i + 1
		case i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n':
			return i + 2
		case i >= len(b) || (b[i] == '\r' && i+1 >= len(b)):
			return -1
		}
	}
}

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, a...))
}

// nextLine returns the line at the start of b without its line ending,
// and the rest.
func nextLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, nil, false
	}
	line, rest = b[:i], b[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest, true
}

// ParseRequest reads the request head in b (as HeadEnd measured it) into
// r, reusing r's field slice. The fields point into b.
func ParseRequest(b []byte, r *Request) error {
	line, rest, ok := nextLine(b)
	// RFC 9112 2.2: a server should ignore at least one empty line before
	// the request line.
	if ok && len(line) == 0 {
		line, rest, ok = nextLine(rest)
	}
	if !ok {
		return ErrIncomplete
	}
	m, after, ok1 := bytes.Cut(line, []byte{' '})
	target, version, ok2 := bytes.Cut(after, []byte{' '})
	if !ok1 || !ok2 || len(m) == 0 || len(target) == 0 {
		return malformed("request line %q", clip(line))
	}
	for _, c := range m {
		if !isToken(c) {
			return malformed("method %q", clip(m))
		}
	}
	for _, c := range target {
		if c <= ' ' || c == 0x7f {
			return malformed("request target %q", clip(target))
		}
	}
	maj, mnr, err := parseVersion(version)
	if err != nil {
		return err
	}
	r.Method, r.Target, r.Major, r.Minor = m, target, maj, mnr
	r.Fields, err = parseFields(rest, r.Fields[:0])
	return err
}

// ParseResponse reads the response head in b into r, reusing r's field
// slice. The fields point into b.
func ParseResponse(b []byte, r *Response) error {
	line, rest, ok := nextLine(b)
	if !ok {
		return ErrIncomplete
	}
	version, after, ok1 := bytes.Cut(line, []byte{' '})
	code, reason, _ := bytes.Cut(after, []byte{' '})
	if !ok1 || len(code) != 3 {
		return malformed("status line %q", clip(line))
	}
	maj, mnr, err := parseVersion(version)
	if err != nil {
		return err
	}
	st := 0
	for _, c := range code {
		if c < '0' || c > '9' {
			return malformed("status %q", code)
		}
		st = st*10 + int(c-'0')
	}
	if st < 100 {
		return malformed("status %d", st)
	}
	r.Major, r.Minor, r.Status, r.Reason = maj, mnr, st, reason
	r.Fields, err = parseFields(rest, r.Fields[:0])
	return err
}

func parseVersion(v []byte) (int, int, error) {
	if len(v) != 8 || string(v[:5]) != "HTTP/" || v[6] != '.' || v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9' {
		return 0, 0, malformed("version %q", clip(v))
	}
	maj, mnr := int(v[5]-'0'), int(v[7]-'0')
	if maj != 1 {
		return 0, 0, malformed("version %q: only HTTP/1.x", clip(v))
	}
	return maj, mnr, nil
}

// parseFields reads header lines up to the blank line.
func parseFields(b []byte, f Fields) (Fields, error) {
	for {
		line, rest, ok := nextLine(b)
		if !ok {
			return f, ErrIncomplete
		}
		if len(line) == 0 {
			return f, nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			// RFC 9112 5.2: obsolete line folding is refused.
			return f, malformed("folded header line")
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok || len(name) == 0 {
			return f, malformed("header line %q", clip(line))
		}
		for _, c := range name {
			if !isToken(c) {
				// Includes whitespace before the colon (RFC 9112 5.1).
				return f, malformed("header name %q", clip(name))
			}
		}
		value = bytes.Trim(value, " \t")
		for _, c := range value {
			if (c < ' ' && c != '\t') || c == 0x7f {
				return f, malformed("control character in header %s", clip(name))
			}
		}
		f = append(f, Field{Name: name, Value: value})
		b = rest
	}
}

// isToken reports whether c may appear in a token (RFC 9110 5.6.2).
func isToken(c byte) bool {
	return c < 0x80 && tokenTable[c]
}

var tokenTable = func() (t [128]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return
}()

// clip shortens what an error quotes.
func clip(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
