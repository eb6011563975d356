package dataplane

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/vigilhq/vigil/dataplane/httpmsg"
)

// bodyKind is how a message's body is delimited.
type bodyKind uint8

const (
	bodyNone    bodyKind = iota
	bodyLength           // Content-Length bytes
	bodyChunked          // chunked transfer coding
	bodyClose            // until the connection closes (responses only)
)

// errBadFraming is wrapped by errors about a message's length.
var errBadFraming = errors.New("bad message framing")

// errUnsupportedCoding is a transfer coding other than chunked.
var errUnsupportedCoding = errors.New("unsupported transfer coding")

// framing reads how a message's body is delimited (RFC 9112 6.3). A
// message with both Transfer-Encoding and Content-Length, or with
// Content-Lengths that disagree, is refused: either is a way to smuggle a
// request past a proxy.
func framing(f httpmsg.Fields, request bool) (bodyKind, int64, error) {
	var te []byte
	var cl int64 = -1
	for i := range f {
		name := f[i].Name
		if len(name) == 17 && equalFoldBytes(name, "transfer-encoding") {
			if te != nil {
				return 0, 0, fmt.Errorf("%w: Transfer-Encoding repeated", errBadFraming)
			}
			te = f[i].Value
		} else if len(name) == 14 && equalFoldBytes(name, "content-length") {
			n, err := parseLength(f[i].Value)
			if err != nil {
				return 0, 0, err
			}
			if cl >= 0 && n != cl {
				return 0, 0, fmt.Errorf("%w: Content-Length values differ", errBadFraming)
			}
			cl = n
		}
	}
	switch {
	case te != nil && cl >= 0:
		return 0, 0, fmt.Errorf("%w: both Transfer-Encoding and Content-Length", errBadFraming)
	case te != nil:
		if !equalFoldBytes(bytes.TrimSpace(te), "chunked") {
			return 0, 0, fmt.Errorf("%w: %q", errUnsupportedCoding, te)
		}
		return bodyChunked, 0, nil
	case cl > 0:
		return bodyLength, cl, nil
	case cl == 0 || request:
		return bodyNone, 0, nil
	default:
		return bodyClose, 0, nil
	}
}

func parseLength(v []byte) (int64, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || len(v) > 18 {
		return 0, fmt.Errorf("%w: Content-Length %q", errBadFraming, clip(v))
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: Content-Length %q", errBadFraming, clip(v))
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

func clip(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}

func equalFoldBytes(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// flusher is where a relayed body goes: written as it arrives.
type flusher interface {
	io.Writer
	Flush() error
}

// awaitData waits, when src holds nothing, for what comes next: dst is
// flushed first so that the other side has all that arrived, and before
// runs (a deadline). io.EOF becomes io.ErrUnexpectedEOF when eofOK is
// false.
func awaitData(dst flusher, src *bufio.Reader, before func(), eofOK bool) error {
	if src.Buffered() > 0 {
		return nil
	}
	if err := dst.Flush(); err != nil {
		return err
	}
	if before != nil {
		before()
	}
	_, err := src.Peek(1)
	if errors.Is(err, io.EOF) && !eofOK {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// relayLength copies n bytes from src to dst, flushing whenever src has
// nothing more buffered so that a streamed body reaches the other side as
// it comes. before runs before each read from src (a deadline).
func relayLength(dst flusher, src *bufio.Reader, n int64, before func()) error {
	for n > 0 {
		if err := awaitData(dst, src, before, false); err != nil {
			return err
		}
		b, _ := src.Peek(int(min(n, int64(src.Buffered()))))
		if _, err := dst.Write(b); err != nil {
			return err
		}
		_, _ = src.Discard(len(b))
		n -= int64(len(b))
	}
	return nil
}

// relayUntilEOF copies src to dst until src ends.
func relayUntilEOF(dst flusher, src *bufio.Reader, before func()) error {
	for {
		if err := awaitData(dst, src, before, true); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		b, _ := src.Peek(src.Buffered())
		if _, err := dst.Write(b); err != nil {
			return err
		}
		_, _ = src.Discard(len(b))
	}
}

// maxChunkLine bounds a chunk-size line with its extensions.
const maxChunkLine = 4096

// relayChunked copies a chunked body from src to dst as it is, chunk
// framing and trailers included, reading the framing to find its end.
func relayChunked(dst flusher, src *bufio.Reader, before func()) error {
	for {
		line, err := copyLine(dst, src, before)
		if err != nil {
			return err
		}
		size, err := chunkSize(line)
		if err != nil {
			return err
		}
		if size == 0 {
			// Trailer fields, then the blank line.
			for {
				line, err := copyLine(dst, src, before)
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return dst.Flush()
				}
			}
		}
		if err := relayLength(dst, src, size, before); err != nil {
			return err
		}
		crlf, err := readLine(src, dst, before)
		if err != nil {
			return err
		}
		if len(bytes.TrimRight(crlf, "\r\n")) != 0 {
			return fmt.Errorf("%w: chunk not followed by CRLF", errBadFraming)
		}
		if _, err := dst.Write(crlf); err != nil {
			return err
		}
	}
}

// copyLine reads one line of the chunked framing and writes it to dst as
// it is; the line is valid until the next read of src.
func copyLine(dst flusher, src *bufio.Reader, before func()) ([]byte, error) {
	line, err := readLine(src, dst, before)
	if err != nil {
		return nil, err
	}
	_, err = dst.Write(line)
	return line, err
}

// readLine reads one line (with its ending) of at most maxChunkLine bytes.
// The line is valid until the next read of src.
func readLine(src *bufio.Reader, dst flusher, before func()) ([]byte, error) {
	if err := awaitData(dst, src, before, false); err != nil {
		return nil, err
	}
	line, err := src.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) || len(line) > maxChunkLine {
			return nil, fmt.Errorf("%w: chunk line too long", errBadFraming)
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return line, nil
}

func chunkSize(line []byte) (int64, error) {
	s := bytes.TrimRight(line, "\r\n")
	if i := bytes.IndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	s = bytes.TrimRight(s, " \t")
	if len(s) == 0 || len(s) > 15 {
		return 0, fmt.Errorf("%w: chunk size %q", errBadFraming, clip(s))
	}
	n, err := strconv.ParseInt(string(s), 16, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: chunk size %q", errBadFraming, clip(s))
	}
	return n, nil
}

// skipTrailers reads a chunked body's trailer section, up to the blank
// line that ends the message, and drops it.
func skipTrailers(src *bufio.Reader) error {
	for {
		line, err := src.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return nil
		}
	}
}
