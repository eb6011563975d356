package actions

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"strings"
	"time"
)

// ErrPermanent marks a failure that trying again will not mend: an SMTP 5xx
// reply, a server without the STARTTLS it is required to offer, an address
// that does not parse. Test for it with errors.Is.
var ErrPermanent = errors.New("permanent failure")

// EmailMessage is one message for SendEmail, templates already rendered.
type EmailMessage struct {
	// Time is the Date header.
	Time time.Time
	// Key is the action's idempotency key, sent as the Message-ID
	// <KEY@vigil> so that a receiver can dedupe; empty sends none.
	Key string
	// Subject is one line: line breaks become spaces.
	Subject string
	// Body is plain UTF-8 text.
	Body string
}

// SendEmail sends m over SMTP to the server a.Server, from a.From to a.To.
//
// It upgrades the connection with STARTTLS and fails if the server does not
// offer it, unless a.StartTLS is false: then the message goes in clear and
// STARTTLS is not tried. With a.Username it authenticates with PLAIN and
// password, only ever over TLS. tlsConf configures STARTTLS; nil means the
// system roots, and an empty ServerName is taken from the server's host.
// The whole exchange ends when ctx does.
//
// Errors name the server; those that trying again will not mend wrap
// ErrPermanent.
func SendEmail(ctx context.Context, a EmailAction, m EmailMessage, password string, tlsConf *tls.Config) error {
	if err := sendEmail(ctx, a, m, password, tlsConf); err != nil {
		return fmt.Errorf("email %s: %w", a.Server, err)
	}
	return nil
}

// sendEmail is SendEmail without the server in its errors.
func sendEmail(ctx context.Context, a EmailAction, m EmailMessage, password string, tlsConf *tls.Config) error {
	from, to, err := emailAddresses(a)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	msg := formatEmail(from, to, m)
	host, _, err := net.SplitHostPort(a.Server)
	if err != nil {
		return fmt.Errorf("%w: server: %w", ErrPermanent, err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", a.Server)
	if err != nil {
		return fmt.Errorf("dial: %w", ctxError(ctx, err))
	}
	defer func() { _ = conn.Close() }()
	stop := deadlineFromContext(ctx, conn)
	defer stop()
	if err := smtpSession(conn, host, a, from, to, msg, password, tlsConf); err != nil {
		return ctxError(ctx, err)
	}
	return nil
}

// smtpSession runs the SMTP exchange on conn: greeting, EHLO, STARTTLS,
// AUTH, one transaction, QUIT.
func smtpSession(conn net.Conn, host string, a EmailAction, from *mail.Address, to []*mail.Address,
	msg []byte, password string, tlsConf *tls.Config,
) error {
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return smtpError("greeting", err)
	}
	defer func() { _ = c.Close() }()
	if err := c.Hello(emailLocalName()); err != nil {
		return smtpError("ehlo", err)
	}
	if a.StartTLS == nil || *a.StartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fmt.Errorf("%w: server does not offer STARTTLS, which is required (set starttls: false to send in clear)", ErrPermanent)
		}
		if err := c.StartTLS(tlsConfigForHost(tlsConf, host)); err != nil {
			return smtpError("starttls", err)
		}
	}
	if a.Username != "" {
		if _, ok := c.TLSConnectionState(); !ok {
			return fmt.Errorf("%w: auth: will not send a password without TLS", ErrPermanent)
		}
		if err := c.Auth(smtp.PlainAuth("", a.Username, password, host)); err != nil {
			return smtpError("auth", err)
		}
	}
	if err := smtpTransaction(c, from, to, msg); err != nil {
		return err
	}
	// The message is accepted: a failed QUIT must not have it sent again.
	_ = c.Quit()
	return nil
}

// smtpTransaction sends msg with MAIL, RCPT and DATA.
func smtpTransaction(c *smtp.Client, from *mail.Address, to []*mail.Address, msg []byte) error {
	if err := c.Mail(from.Address); err != nil {
		return smtpError("mail from "+from.Address, err)
	}
	for _, t := range to {
		if err := c.Rcpt(t.Address); err != nil {
			return smtpError("rcpt to "+t.Address, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return smtpError("data", err)
	}
	if _, err := w.Write(msg); err != nil {
		return smtpError("data", err)
	}
	if err := w.Close(); err != nil {
		return smtpError("data", err)
	}
	return nil
}

// smtpError wraps err from the SMTP step op, and ErrPermanent with it when
// the server replied 5xx.
func smtpError(op string, err error) error {
	var perr *textproto.Error
	if errors.As(err, &perr) && perr.Code >= 500 {
		return fmt.Errorf("%s: %w: %w", op, ErrPermanent, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// emailLocalName is the name SendEmail gives in EHLO: the host's name, or
// localhost.
func emailLocalName() string {
	name, err := os.Hostname()
	if err != nil || name == "" || strings.ContainsAny(name, " \r\n") {
		return "localhost"
	}
	return name
}

// emailAddresses parses a's From and To.
func emailAddresses(a EmailAction) (*mail.Address, []*mail.Address, error) {
	from, err := mail.ParseAddress(a.From)
	if err != nil {
		return nil, nil, fmt.Errorf("from %q: %w", a.From, err)
	}
	if len(a.To) == 0 {
		return nil, nil, errors.New("no to address")
	}
	to := make([]*mail.Address, len(a.To))
	for i, s := range a.To {
		if to[i], err = mail.ParseAddress(s); err != nil {
			return nil, nil, fmt.Errorf("to %q: %w", s, err)
		}
	}
	return from, to, nil
}

// formatEmail renders m as an RFC 5322 message with CRLF line endings: a
// plain UTF-8 text body in quoted-printable.
func formatEmail(from *mail.Address, to []*mail.Address, m EmailMessage) []byte {
	var b bytes.Buffer
	header := func(name, value string) { b.WriteString(foldHeader(name+": "+value) + "\r\n") }
	header("From", from.String())
	tos := make([]string, len(to))
	for i, t := range to {
		tos[i] = t.String()
	}
	header("To", strings.Join(tos, ", "))
	header("Subject", mime.QEncoding.Encode("utf-8", emailSubject(m.Subject)))
	header("Date", m.Time.Format(time.RFC1123Z))
	if m.Key != "" {
		header("Message-ID", "<"+messageIDLeft(m.Key)+"@vigil>")
	}
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(strings.ToValidUTF8(m.Body, "\ufffd"))) // a bytes.Buffer does not fail
	_ = qp.Close()
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// foldHeader folds a header line at spaces so that its lines keep to 78
// characters where the words allow (RFC 5322 §2.2.3).
func foldHeader(line string) string {
	const limit = 78
	if len(line) <= limit {
		return line
	}
	var b strings.Builder
	n := 0
	for i, w := range strings.Split(line, " ") {
		if i > 0 {
			if w != "" && n+1+len(w) > limit {
				b.WriteString("\r\n")
				n = 0
			}
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}

// emailSubject is s on one line, fit for a header: line breaks become
// spaces, so that a subject cannot add headers.
func emailSubject(s string) string {
	s = strings.ToValidUTF8(s, "\ufffd")
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}

// messageIDLeft is key as the dot-atom-text left of a Message-ID's '@'
// (RFC 5322 §3.6.4): each byte outside atext, and each dot that would
// start, end or double, becomes %XX, '%' included, so that distinct keys
// stay distinct.
func messageIDLeft(key string) string {
	var b strings.Builder
	for i := range len(key) {
		c := key[i]
		dotOK := c == '.' && i > 0 && i < len(key)-1 && key[i-1] != '.'
		if c != '%' && (isAtext(c) || dotOK) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// isAtext reports whether c is an RFC 5322 atext character.
func isAtext(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}
