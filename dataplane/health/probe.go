package health

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigilhq/vigil/dataplane/spec"
)

// Failure codes a check reports: values of Avi's failure_code
// (SeHmEventServerDetails and ServerHealthMonitor).
const (
	// FailureConnectionRefused: the server refused the connection.
	FailureConnectionRefused = "CONNECTION_REFUSED"
	// FailureConnectionTimeout: the connection did not open within the
	// monitor's timeout.
	FailureConnectionTimeout = "CONNECTION_TIMEOUT"
	// FailureConnectionReset: the server reset the connection.
	FailureConnectionReset = "CONNECTION_RESET"
	// FailureConnectionError: the connection failed for another reason.
	FailureConnectionError = "CONNECTION_ERROR"
	// FailureServerUnreachable: no route to the server.
	FailureServerUnreachable = "SERVER_UNREACHABLE"
	// FailureAddressError: the server's address cannot be dialled.
	FailureAddressError = "ADDRESS_ERROR"
	// FailureNoResources: the local host ran out of ports or descriptors.
	FailureNoResources = "NO_RESOURCES"
	// FailureNoResponse: the server closed the connection without a
	// byte of response.
	FailureNoResponse = "NO_RESPONSE"
	// FailurePayloadTimeout: the connection opened but the response did
	// not arrive within the monitor's timeout.
	FailurePayloadTimeout = "PAYLOAD_TIMEOUT"
	// FailureResponseCodeMismatch: the status is not an expected code.
	FailureResponseCodeMismatch = "RESPONSE_CODE_MISMATCH"
	// FailurePayloadContentMismatch: the body lacks body_contains.
	FailurePayloadContentMismatch = "PAYLOAD_CONTENT_MISMATCH"
	// FailureResponseBufferOverflow: the response head is over 64 KiB.
	FailureResponseBufferOverflow = "RESPONSE_BUFFER_OVERFLOW"
	// FailureOtherError: anything else, such as a response that is not
	// HTTP.
	FailureOtherError = "OTHER_ERROR"
)

// UserAgent is the User-Agent of http checks.
const UserAgent = "vigil-health/1"

const (
	// maxResponseHead bounds an http check's status line and headers.
	maxResponseHead = 64 << 10
	// maxRespString bounds the response excerpt kept for an event.
	maxRespString = 256
)

// monitor is a health monitor with its defaults applied.
type monitor struct {
	name   string
	spec   spec.HealthMonitor // a deep copy, to tell changes
	http   bool
	every  time.Duration
	limit  time.Duration // timeout of one check
	rise   int
	fall   int
	port   int
	method string
	path   string
	host   string
	codes  [][2]int
	body   string
	bad    error // settings a check cannot use: every check fails
}

// newMonitor copies h and applies the defaults ParseHealthMonitor would.
func newMonitor(name string, h *spec.HealthMonitor) *monitor {
	m := &monitor{name: name, spec: *h}
	if h.HTTP != nil {
		hc := *h.HTTP
		hc.ExpectedCodes = append([]string(nil), h.HTTP.ExpectedCodes...)
		m.spec.HTTP = &hc
	}
	m.http = h.Kind() == spec.MonitorHTTP
	m.every = orDuration(h.Interval.D(), spec.DefaultMonitorInterval)
	m.limit = orDuration(h.Timeout.D(), spec.DefaultMonitorTimeout)
	if m.limit > m.every {
		m.limit = m.every
	}
	m.rise = orInt(h.SuccessfulChecks, spec.DefaultSuccessfulChecks)
	m.fall = orInt(h.FailedChecks, spec.DefaultFailedChecks)
	m.port = h.Port
	if !m.http {
		return m
	}
	var hc spec.HTTPCheck
	if h.HTTP != nil {
		hc = *h.HTTP
	}
	m.method = orString(hc.Method, "GET")
	m.path = orString(hc.Path, "/")
	m.host = hc.Host
	m.body = hc.BodyContains
	if strings.ContainsAny(m.method+m.path+m.host, " \r\n") {
		m.bad = fmt.Errorf("monitor %s: method, path and host must hold no spaces", name)
	}
	codes := hc.ExpectedCodes
	if len(codes) == 0 {
		codes = []string{"2xx", "3xx"}
	}
	for _, c := range codes {
		lo, hi, err := spec.CodeRange(c)
		if err != nil {
			m.bad = fmt.Errorf("monitor %s: expected_codes: %w", name, err)
			continue
		}
		m.codes = append(m.codes, [2]int{lo, hi})
	}
	return m
}

func orDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func orInt(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// same reports whether m and o have the same name and settings.
func (m *monitor) same(o *monitor) bool {
	return m.name == o.name && reflect.DeepEqual(m.spec, o.spec)
}

// expects reports whether status is one of the expected codes.
func (m *monitor) expects(status int) bool {
	for _, r := range m.codes {
		if status >= r[0] && status <= r[1] {
			return true
		}
	}
	return false
}

// target returns the address a check of m dials and the Host header it
// sends: the monitor's host, else the server's hostname, else ip:port.
func (m *monitor) target(ip string, port int, hostname string) (addr, host string) {
	if m.port != 0 {
		port = m.port
	}
	addr = net.JoinHostPort(ip, strconv.Itoa(port))
	switch {
	case m.host != "":
		host = m.host
	case hostname != "":
		host = hostname
	default:
		host = addr
	}
	return addr, host
}

// result is the outcome of one check.
type result struct {
	// code is the failure code; empty when the check passed.
	code string
	// status is the HTTP status received, 0 when none was.
	status int
	// excerpt is the start of the response, for failed http checks.
	excerpt string
	// elapsed is the time to the response, 0 when none came.
	elapsed time.Duration
	// err says what failed, for the debug log.
	err error
}

// dialFunc opens a connection; net.Dialer.DialContext is one.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// check runs one check of m against addr, bounded by m's timeout. The
// connection is closed when the check ends or ctx is cancelled.
func check(ctx context.Context, dial dialFunc, m *monitor, addr, host string) result {
	if m.bad != nil {
		return result{code: FailureOtherError, err: m.bad}
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, m.limit)
	defer cancel()
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return result{code: classify(err, false), err: fmt.Errorf("connect %s: %w", addr, err)}
	}
	defer func() { _ = conn.Close() }()
	if !m.http {
		return result{elapsed: time.Since(start)}
	}
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	// Cancelling ctx (a stop, or the timeout) ends a blocked read.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	r := checkHTTP(conn, m, host)
	if r.status != 0 {
		r.elapsed = time.Since(start)
	}
	if r.err != nil {
		r.err = fmt.Errorf("http check %s: %w", addr, r.err)
	}
	return r
}

// checkHTTP sends m's request on conn and judges the response.
func checkHTTP(conn net.Conn, m *monitor, host string) result {
	req := m.method + " " + m.path + " HTTP/1.1\r\nHost: " + host +
		"\r\nUser-Agent: " + UserAgent + "\r\nAccept: */*\r\nConnection: close\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return result{code: classify(err, true), err: fmt.Errorf("send request: %w", err)}
	}
	lr := &io.LimitedReader{R: conn, N: maxResponseHead + spec.MaxMonitorBody}
	cr := &countingReader{r: lr}
	resp, err := http.ReadResponse(bufio.NewReader(cr), &http.Request{Method: m.method})
	if err != nil {
		code := FailureOtherError
		switch {
		case isTimeout(err):
			code = FailurePayloadTimeout
		case lr.N == 0:
			code = FailureResponseBufferOverflow
		case cr.n == 0 && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)):
			code = FailureNoResponse
		case isReset(err):
			code = FailureConnectionReset
		}
		return result{code: code, err: fmt.Errorf("read response: %w", err)}
	}
	defer resp.Body.Close()
	r := result{status: resp.StatusCode}
	if !m.expects(resp.StatusCode) {
		r.code = FailureResponseCodeMismatch
		r.excerpt = excerpt([]byte(resp.Proto + " " + resp.Status))
		r.err = fmt.Errorf("status %d not expected", resp.StatusCode)
		return r
	}
	if m.body == "" {
		return r
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, spec.MaxMonitorBody))
	if bytes.Contains(body, []byte(m.body)) {
		return r
	}
	switch {
	case err != nil && isTimeout(err):
		r.code = FailurePayloadTimeout
		r.err = fmt.Errorf("read body: %w", err)
	default:
		r.code = FailurePayloadContentMismatch
		r.excerpt = excerpt(body)
		r.err = fmt.Errorf("body lacks %q", m.body)
	}
	return r
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// excerpt returns the start of b as valid UTF-8.
func excerpt(b []byte) string {
	if len(b) > maxRespString {
		b = b[:maxRespString]
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// classify maps a connection error to a failure code; connected tells
// whether the connection had opened.
func classify(err error, connected bool) string {
	var addrErr *net.AddrError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return FailureConnectionRefused
	case isReset(err):
		return FailureConnectionReset
	case isTimeout(err):
		if connected {
			return FailurePayloadTimeout
		}
		return FailureConnectionTimeout
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return FailureServerUnreachable
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EMFILE),
		errors.Is(err, syscall.ENFILE), errors.Is(err, syscall.ENOBUFS):
		return FailureNoResources
	case errors.As(err, &addrErr):
		return FailureAddressError
	}
	return FailureConnectionError
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNABORTED)
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
