package actions

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// testSMTPBackend is a go-smtp backend that keeps what it is sent.
type testSMTPBackend struct {
	// Password, when set, is alice's, and mail needs her to log in.
	Password string
	// Rcpt, when set, answers each RCPT.
	Rcpt func(to string) error

	mu    sync.Mutex
	auths []testSMTPAuth
	mails []testSMTPMail
}

// testSMTPAuth is one AUTH PLAIN try.
type testSMTPAuth struct{ Username, Password string }

// testSMTPMail is one delivered message.
type testSMTPMail struct {
	From string
	To   []string
	Data []byte
	TLS  bool
	User string
}

func (be *testSMTPBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &testSMTPSession{be: be, c: c}, nil
}

func (be *testSMTPBackend) got() ([]testSMTPAuth, []testSMTPMail) {
	be.mu.Lock()
	defer be.mu.Unlock()
	return append([]testSMTPAuth(nil), be.auths...), append([]testSMTPMail(nil), be.mails...)
}

// testSMTPSession is one connection to a testSMTPBackend.
type testSMTPSession struct {
	be   *testSMTPBackend
	c    *smtp.Conn
	user string
	mail testSMTPMail
}

var _ smtp.AuthSession = (*testSMTPSession)(nil)

func (s *testSMTPSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *testSMTPSession) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		s.be.mu.Lock()
		s.be.auths = append(s.be.auths, testSMTPAuth{username, password})
		s.be.mu.Unlock()
		if identity != "" && identity != username || username != "alice" || password != s.be.Password {
			return smtp.ErrAuthFailed
		}
		s.user = username
		return nil
	}), nil
}

func (s *testSMTPSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.be.Password != "" && s.user == "" {
		return smtp.ErrAuthRequired
	}
	_, tls := s.c.TLSConnectionState()
	s.mail = testSMTPMail{From: from, TLS: tls, User: s.user}
	return nil
}

func (s *testSMTPSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.be.Rcpt != nil {
		if err := s.be.Rcpt(to); err != nil {
			return err
		}
	}
	s.mail.To = append(s.mail.To, to)
	return nil
}

func (s *testSMTPSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.mail.Data = b
	s.be.mu.Lock()
	s.be.mails = append(s.be.mails, s.mail)
	s.be.mu.Unlock()
	return nil
}

func (s *testSMTPSession) Reset()        { s.mail = testSMTPMail{} }
func (s *testSMTPSession) Logout() error { return nil }

// startSMTP serves be on a loopback port, offering STARTTLS with tlsConf
// unless it is nil, and returns the address.
func startSMTP(t *testing.T, be *testSMTPBackend, tlsConf *tls.Config) string {
	t.Helper()
	s := smtp.NewServer(be)
	s.Domain = "localhost"
	s.TLSConfig = tlsConf
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	s.ErrorLog = log.New(io.Discard, "", 0) // a client that hangs up on a bad certificate is expected
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String()
}

func testEmailAction(addr string) EmailAction {
	return EmailAction{
		Server: addr, From: `"Vigil" <vigil@example.com>`,
		To: []string{"ops@example.com", "Zoë Ops <zoe@example.com>"}, Username: "alice",
	}
}

func TestEmailDelivers(t *testing.T) {
	serverTLS, clientTLS := loopbackTLS(t)
	be := &testSMTPBackend{Password: "s3cret"}
	addr := startSMTP(t, be, serverTLS)
	body := "Pool wéb is down: 3 × SERVER_DOWN.\nA=1, and a line long enough to need a soft break in quoted-printable, " +
		"which wraps at 76 characters.\n.a line starting with a dot\n\nend"
	m := EmailMessage{
		Time:    time.Date(2024, 3, 5, 7, 8, 9, 0, time.FixedZone("CET", 3600)),
		Key:     "alert-1.email.1",
		Subject: "Alerte: le serveur « web » est tombé ✓ — pool web-frontend-production-eu-west, état critique",
		Body:    body,
	}
	if err := SendEmail(context.Background(), testEmailAction(addr), m, "s3cret", clientTLS); err != nil {
		t.Fatal(err)
	}
	auths, mails := be.got()
	if len(auths) != 1 || auths[0] != (testSMTPAuth{"alice", "s3cret"}) {
		t.Errorf("auths %+v, want alice with her password once", auths)
	}
	if len(mails) != 1 {
		t.Fatalf("%d messages delivered, want 1", len(mails))
	}
	got := mails[0]
	if got.From != "vigil@example.com" || strings.Join(got.To, ",") != "ops@example.com,zoe@example.com" ||
		!got.TLS || got.User != "alice" {
		t.Errorf("envelope %q to %q, TLS %v, user %q", got.From, got.To, got.TLS, got.User)
	}
	checkCRLF(t, got.Data)
	msg, err := mail.ReadMessage(bytes.NewReader(got.Data))
	if err != nil {
		t.Fatal(err)
	}
	h := msg.Header
	if from, err := mail.ParseAddress(h.Get("From")); err != nil || from.Address != "vigil@example.com" || from.Name != "Vigil" {
		t.Errorf("From %q: %v", h.Get("From"), err)
	}
	if to, err := h.AddressList("To"); err != nil || len(to) != 2 || to[1].Name != "Zoë Ops" || to[1].Address != "zoe@example.com" {
		t.Errorf("To %q: %v", h.Get("To"), err)
	}
	var dec mime.WordDecoder
	if subject, err := dec.DecodeHeader(h.Get("Subject")); err != nil || subject != m.Subject {
		t.Errorf("Subject %q decodes to %q (%v), want %q", h.Get("Subject"), subject, err, m.Subject)
	}
	if date, err := h.Date(); err != nil || !date.Equal(m.Time) {
		t.Errorf("Date %q is %v (%v), want %v", h.Get("Date"), date, err, m.Time)
	}
	for name, want := range map[string]string{
		"Message-Id": "<alert-1.email.1@vigil>", "Mime-Version": "1.0",
		"Content-Type": "text/plain; charset=utf-8", "Content-Transfer-Encoding": "quoted-printable",
	} {
		if h.Get(name) != want {
			t.Errorf("%s %q, want %q", name, h.Get(name), want)
		}
	}
	decoded, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSuffix(strings.ReplaceAll(string(decoded), "\r\n", "\n"), "\n"); got != body {
		t.Errorf("body %q, want %q", got, body)
	}
}

// checkCRLF fails t unless each line of data ends in CRLF and keeps to
// RFC 5322's 998 characters, 78 in the header.
func checkCRLF(t *testing.T, data []byte) {
	t.Helper()
	if !bytes.HasSuffix(data, []byte("\r\n")) {
		t.Error("message does not end in CRLF")
	}
	header := true
	for i, line := range strings.Split(strings.TrimSuffix(string(data), "\r\n"), "\r\n") {
		if strings.ContainsAny(line, "\r\n") {
			t.Errorf("line %d has a bare CR or LF: %q", i, line)
		}
		if header && len(line) > 78 || len(line) > 998 {
			t.Errorf("line %d is %d long: %q", i, len(line), line)
		}
		if line == "" {
			header = false
		}
	}
}

func TestEmailSubjectCannotAddHeaders(t *testing.T) {
	serverTLS, clientTLS := loopbackTLS(t)
	be := &testSMTPBackend{Password: "s3cret"}
	addr := startSMTP(t, be, serverTLS)
	m := EmailMessage{Time: time.Now(), Key: "k", Subject: "hi\r\nBcc: evil@example.com\nX-Evil: 1", Body: "b"}
	if err := SendEmail(context.Background(), testEmailAction(addr), m, "s3cret", clientTLS); err != nil {
		t.Fatal(err)
	}
	_, mails := be.got()
	if len(mails) != 1 {
		t.Fatalf("%d messages delivered, want 1", len(mails))
	}
	msg, err := mail.ReadMessage(bytes.NewReader(mails[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Header["Bcc"]) != 0 || len(msg.Header["X-Evil"]) != 0 || !strings.HasPrefix(msg.Header.Get("Subject"), "hi ") {
		t.Errorf("header %q", msg.Header)
	}
}

func TestEmailMessageID(t *testing.T) {
	dotAtom := regexp.MustCompile("^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
	seen := map[string]string{}
	for key, want := range map[string]string{
		"alert-1.email.1": "alert-1.email.1",
		"a b":             "a%20b",
		"a_b":             "a_b",
		".a..b.":          "%2Ea.%2Eb%2E",
		"50%":             "50%25",
		"50%25":           "50%2525",
		"<x>@y\r\n":       "%3Cx%3E%40y%0D%0A",
		"é":               "%C3%A9",
	} {
		got := messageIDLeft(key)
		if got != want {
			t.Errorf("messageIDLeft(%q) = %q, want %q", key, got, want)
		}
		if !dotAtom.MatchString(got) {
			t.Errorf("messageIDLeft(%q) = %q is not a dot-atom", key, got)
		}
		if other, ok := seen[got]; ok {
			t.Errorf("%q and %q both give %q", key, other, got)
		}
		seen[got] = key
	}
}

func TestEmailWrongPassword(t *testing.T) {
	serverTLS, clientTLS := loopbackTLS(t)
	be := &testSMTPBackend{Password: "s3cret"}
	addr := startSMTP(t, be, serverTLS)
	err := SendEmail(context.Background(), testEmailAction(addr), EmailMessage{Key: "k"}, "guess", clientTLS)
	if err == nil || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "auth") {
		t.Fatalf("error %v, want an auth error naming %s", err, addr)
	}
	if !errors.Is(err, ErrPermanent) {
		t.Errorf("error %q: a 535 is permanent", err)
	}
	if auths, mails := be.got(); len(auths) != 1 || len(mails) != 0 {
		t.Errorf("%d auths and %d messages, want 1 and 0", len(auths), len(mails))
	}
}

func TestEmailSTARTTLS(t *testing.T) {
	be := &testSMTPBackend{}
	addr := startSMTP(t, be, nil)
	a := testEmailAction(addr)
	a.Username = ""
	m := EmailMessage{Time: time.Now(), Key: "k", Subject: "s", Body: "b"}

	err := SendEmail(context.Background(), a, m, "", nil)
	if err == nil || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "STARTTLS") ||
		!errors.Is(err, ErrPermanent) {
		t.Errorf("error %v, want a permanent one naming %s and STARTTLS", err, addr)
	}
	if _, mails := be.got(); len(mails) != 0 {
		t.Fatalf("%d messages sent in clear", len(mails))
	}

	a.StartTLS = new(false)
	if err := SendEmail(context.Background(), a, m, "", nil); err != nil {
		t.Fatalf("starttls false: %v", err)
	}
	if _, mails := be.got(); len(mails) != 1 || mails[0].TLS {
		t.Errorf("messages %+v, want one in clear", mails)
	}

	a.Username = "alice"
	err = SendEmail(context.Background(), a, m, "s3cret", nil)
	if err == nil || !errors.Is(err, ErrPermanent) {
		t.Errorf("error %v, want a permanent refusal to send a password in clear", err)
	}
	if auths, _ := be.got(); len(auths) != 0 {
		t.Errorf("auths %+v sent in clear", auths)
	}
}

func TestEmailUntrustedCertificate(t *testing.T) {
	serverTLS, _ := loopbackTLS(t)
	be := &testSMTPBackend{Password: "s3cret"}
	addr := startSMTP(t, be, serverTLS)
	err := SendEmail(context.Background(), testEmailAction(addr), EmailMessage{Key: "k"}, "s3cret", nil)
	if err == nil || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("error %v, want a certificate error naming %s", err, addr)
	}
	if auths, _ := be.got(); len(auths) != 0 {
		t.Errorf("auths %+v over an untrusted connection", auths)
	}
}

func TestEmailReplyCodes(t *testing.T) {
	serverTLS, clientTLS := loopbackTLS(t)
	be := &testSMTPBackend{Password: "s3cret", Rcpt: func(to string) error {
		switch to {
		case "gone@example.com":
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		case "later@example.com":
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
		}
		return nil
	}}
	addr := startSMTP(t, be, serverTLS)
	for _, tc := range []struct {
		to        string
		code      int
		permanent bool
	}{
		{"gone@example.com", 550, true},
		{"later@example.com", 451, false},
	} {
		a := testEmailAction(addr)
		a.To = []string{"ops@example.com", tc.to}
		err := SendEmail(context.Background(), a, EmailMessage{Key: "k"}, "s3cret", clientTLS)
		var perr *textproto.Error
		switch {
		case err == nil:
			t.Errorf("%s: no error", tc.to)
		case errors.Is(err, ErrPermanent) != tc.permanent:
			t.Errorf("%s: error %q: permanent %v, want %v", tc.to, err, !tc.permanent, tc.permanent)
		case !errors.As(err, &perr) || perr.Code != tc.code:
			t.Errorf("%s: error %q does not carry the %d reply", tc.to, err, tc.code)
		case !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), tc.to):
			t.Errorf("%s: error %q does not name the server and the recipient", tc.to, err)
		}
	}
	if _, mails := be.got(); len(mails) != 0 {
		t.Errorf("%d messages delivered", len(mails))
	}
}

func TestEmailContextDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0") // never greets
	if err != nil {
		t.Fatal(err)
	}
	acceptAndDrain(t, ln)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = SendEmail(ctx, testEmailAction(ln.Addr().String()), EmailMessage{Key: "k"}, "s3cret", nil)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), ln.Addr().String()) ||
		errors.Is(err, ErrPermanent) {
		t.Errorf("error %v, want a deadline naming %s", err, ln.Addr())
	}
}

func TestEmailBadAddressIsPermanent(t *testing.T) {
	a := testEmailAction("127.0.0.1:1")
	a.To = []string{"not an address"}
	if err := SendEmail(context.Background(), a, EmailMessage{}, "", nil); !errors.Is(err, ErrPermanent) {
		t.Errorf("error %v, want permanent", err)
	}
}
