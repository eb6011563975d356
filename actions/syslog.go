package actions

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// syslogSDID names vigil's structured-data element. 32473 is the private
// enterprise number that RFC 5612 reserves for documentation.
const syslogSDID = "vigil@32473"

// syslogMaxDatagram is the largest UDP datagram SendSyslog sends: RFC 5426
// §3.2 says receivers must accept 480 bytes and should accept 2048.
const syslogMaxDatagram = 2048

// syslogBOM starts the MSG of an RFC 5424 message in UTF-8 (MSG-UTF8).
const syslogBOM = "\ufeff"

// Limits of the RFC 5424 header fields, in bytes.
const (
	syslogMaxHostname = 255
	syslogMaxAppName  = 48
	syslogMaxMsgID    = 32
)

// SyslogMessage is one message for SendSyslog, templates already rendered.
type SyslogMessage struct {
	// Time is the TIMESTAMP, sent in UTC with microseconds; zero sends the
	// NILVALUE.
	Time time.Time
	// Hostname is the HOSTNAME field.
	Hostname string
	// Severity is 0 (emergency) to 7 (debug).
	Severity int
	// MsgID is the MSGID field, e.g. the alert's state.
	MsgID string
	// Key is the action's idempotency key, sent as the key parameter of the
	// vigil@32473 structured-data element so that a receiver can dedupe.
	Key string
	// Text is the MSG, sent as UTF-8 after a byte order mark.
	Text string
}

// SendSyslog sends m as one RFC 5424 message to a.Address.
//
// Over udp (the default) the message is one datagram of at most 2048 bytes,
// its text cut at a character boundary if need be. Over tcp and tls the
// message is octet-counted (RFC 6587 §3.4.1, RFC 5425) on a connection of its
// own, closed once written. tlsConf configures tls; nil means the system
// roots, and an empty ServerName is taken from the address. The dial and
// the write end when ctx does. Errors name the address; none wraps
// ErrPermanent, since network failures are worth retrying.
func SendSyslog(ctx context.Context, a SyslogAction, m SyslogMessage, tlsConf *tls.Config) error {
	frame, err := syslogFrame(a, m)
	if err != nil {
		return fmt.Errorf("syslog %s: %w", a.Address, err)
	}
	conn, err := dialSyslog(ctx, a, tlsConf)
	if err != nil {
		return fmt.Errorf("syslog %s: dial: %w", a.Address, ctxError(ctx, err))
	}
	defer func() { _ = conn.Close() }()
	stop := deadlineFromContext(ctx, conn)
	defer stop()
	if _, err := conn.Write(frame); err != nil {
		return fmt.Errorf("syslog %s: write: %w", a.Address, ctxError(ctx, err))
	}
	return nil
}

// syslogFrame is what SendSyslog writes for m: the datagram over udp, the
// octet-counted frame over tcp and tls.
func syslogFrame(a SyslogAction, m SyslogMessage) ([]byte, error) {
	line, msgStart, err := formatSyslog(a, m, os.Getpid())
	if err != nil {
		return nil, err
	}
	switch a.Protocol {
	case "", "udp":
		return truncateSyslog(line, msgStart, syslogMaxDatagram)
	case "tcp", "tls":
		frame := strconv.AppendInt(make([]byte, 0, len(line)+8), int64(len(line)), 10)
		frame = append(frame, ' ')
		return append(frame, line...), nil
	default:
		return nil, fmt.Errorf("unknown protocol %q (udp, tcp or tls)", a.Protocol)
	}
}

// dialSyslog connects to a.Address over a.Protocol.
func dialSyslog(ctx context.Context, a SyslogAction, tlsConf *tls.Config) (net.Conn, error) {
	var d net.Dialer
	switch a.Protocol {
	case "tcp":
		return d.DialContext(ctx, "tcp", a.Address)
	case "tls":
		host, _, err := net.SplitHostPort(a.Address)
		if err != nil {
			return nil, err
		}
		td := tls.Dialer{NetDialer: &d, Config: tlsConfigForHost(tlsConf, host)}
		return td.DialContext(ctx, "tcp", a.Address)
	default:
		return d.DialContext(ctx, "udp", a.Address)
	}
}

// formatSyslog renders the RFC 5424 line of m, without framing, and the
// offset of its MSG (after the BOM).
func formatSyslog(a SyslogAction, m SyslogMessage, pid int) (line []byte, msgStart int, err error) {
	facilityName := a.Facility
	if facilityName == "" {
		facilityName = DefaultSyslogFacility
	}
	facility, ok := syslogFacilities[facilityName]
	if !ok {
		return nil, 0, fmt.Errorf("unknown facility %q", a.Facility)
	}
	if m.Severity < 0 || m.Severity > 7 {
		return nil, 0, fmt.Errorf("severity %d is not from 0 to 7", m.Severity)
	}
	appName := a.AppName
	if appName == "" {
		appName = DefaultSyslogAppName
	}
	timestamp := "-"
	if !m.Time.IsZero() {
		timestamp = m.Time.UTC().Format("2006-01-02T15:04:05.000000Z")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<%d>1 %s %s %s %d %s ", facility*8+m.Severity, timestamp,
		syslogField(m.Hostname, syslogMaxHostname), syslogField(appName, syslogMaxAppName),
		pid, syslogField(m.MsgID, syslogMaxMsgID))
	writeSyslogSD(&b, m.Key)
	b.WriteString(" " + syslogBOM)
	msgStart = b.Len()
	b.WriteString(strings.ToValidUTF8(m.Text, "\ufffd"))
	return []byte(b.String()), msgStart, nil
}

// syslogField is s as an RFC 5424 header field: the NILVALUE when empty,
// each character outside printable US-ASCII replaced by '_', cut to limit
// bytes.
func syslogField(s string, limit int) string {
	if s == "" {
		return "-"
	}
	s = strings.Map(func(r rune) rune {
		if r < 33 || r > 126 {
			return '_'
		}
		return r
	}, s)
	return s[:min(len(s), limit)]
}

// writeSyslogSD writes the STRUCTURED-DATA field: vigil's element with the
// key, or the NILVALUE without one.
func writeSyslogSD(b *strings.Builder, key string) {
	if key == "" {
		b.WriteString("-")
		return
	}
	b.WriteString("[" + syslogSDID + ` key="`)
	// PARAM-VALUE escapes '"', '\' and ']' (RFC 5424 §6.3.3).
	for _, r := range strings.ToValidUTF8(key, "\ufffd") {
		if r == '"' || r == '\\' || r == ']' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteString(`"]`)
}

// truncateSyslog cuts line to at most limit bytes, at a UTF-8 character
// boundary in the MSG that starts at msgStart; it fails when the header
// alone is too long.
func truncateSyslog(line []byte, msgStart, limit int) ([]byte, error) {
	if len(line) <= limit {
		return line, nil
	}
	if msgStart > limit {
		return nil, fmt.Errorf("message header is %d bytes, more than a %d-byte datagram", msgStart, limit)
	}
	n := limit
	for n > msgStart && !utf8.RuneStart(line[n]) {
		n--
	}
	return line[:n], nil
}

// tlsConfigForHost is conf, or a default, with ServerName set to host when
// empty; conf itself is left alone.
func tlsConfigForHost(conf *tls.Config, host string) *tls.Config {
	if conf == nil {
		return &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	if conf.ServerName != "" || conf.InsecureSkipVerify {
		return conf
	}
	conf = conf.Clone()
	conf.ServerName = host
	return conf
}

// deadlineFromContext sets ctx's deadline on conn, and makes conn's
// pending and later I/O fail once ctx is done. The returned stop undoes the
// watch.
func deadlineFromContext(ctx context.Context, conn net.Conn) (stop func() bool) {
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d) // only fails on a closed conn, whose I/O fails anyway
	}
	return context.AfterFunc(ctx, func() {
		_ = conn.SetDeadline(time.Unix(1, 0))
	})
}

// ctxError puts ctx's error in front of err once ctx is done, so that
// errors.Is finds it. A conn deadline taken from ctx can pass a moment
// before ctx reports it, so a timeout past ctx's deadline counts as it.
func ctxError(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if d, ok := ctx.Deadline(); cerr == nil && ok && errors.Is(err, os.ErrDeadlineExceeded) && time.Until(d) <= 0 {
		cerr = context.DeadlineExceeded
	}
	if cerr == nil || errors.Is(err, cerr) {
		return err
	}
	return fmt.Errorf("%w (%w)", cerr, err)
}
