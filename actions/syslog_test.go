package actions

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// syslogLine is an RFC 5424 message taken apart.
type syslogLine struct {
	PRI       int
	Version   string
	Timestamp string
	Hostname  string
	AppName   string
	ProcID    string
	MsgID     string
	SD        string            // the raw STRUCTURED-DATA field
	SDID      string            // the one element's id, "" for the NILVALUE
	Params    map[string]string // its parameters, unescaped
	BOM       bool
	Msg       string // after the BOM
}

// parseSyslogLine parses b, with one SD element at most, failing t when b
// is not an RFC 5424 message.
func parseSyslogLine(t *testing.T, b []byte) syslogLine {
	t.Helper()
	s := string(b)
	var l syslogLine
	end := strings.IndexByte(s, '>')
	if !strings.HasPrefix(s, "<") || end < 2 || end > 4 {
		t.Fatalf("no PRI in %q", s)
	}
	pri, err := strconv.Atoi(s[1:end])
	if err != nil {
		t.Fatalf("PRI of %q: %v", s, err)
	}
	l.PRI = pri
	fields := strings.SplitN(s[end+1:], " ", 7)
	if len(fields) < 7 {
		t.Fatalf("too few header fields in %q", s)
	}
	l.Version, l.Timestamp, l.Hostname, l.AppName, l.ProcID, l.MsgID = fields[0], fields[1], fields[2], fields[3], fields[4], fields[5]
	rest := fields[6]
	if strings.HasPrefix(rest, "-") {
		l.SD, rest = "-", rest[1:]
	} else {
		l.SDID, l.Params, rest = parseSDElement(t, rest)
		l.SD = fields[6][:len(fields[6])-len(rest)]
	}
	if rest == "" {
		return l
	}
	if rest[0] != ' ' {
		t.Fatalf("no space before MSG in %q", s)
	}
	l.Msg, l.BOM = strings.CutPrefix(rest[1:], "\ufeff")
	return l
}

// parseSDElement parses one SD-ELEMENT at the start of s, returning what
// follows it.
func parseSDElement(t *testing.T, s string) (id string, params map[string]string, rest string) {
	t.Helper()
	if s == "" || s[0] != '[' {
		t.Fatalf("no SD element in %q", s)
	}
	i := strings.IndexAny(s, " ]")
	if i < 0 {
		t.Fatalf("unterminated SD element in %q", s)
	}
	id, params = s[1:i], map[string]string{}
	for s[i] == ' ' {
		eq := strings.Index(s[i:], `="`)
		if eq < 0 {
			t.Fatalf("no PARAM-VALUE in %q", s)
		}
		name := s[i+1 : i+eq]
		var v strings.Builder
		j := i + eq + 2
		for ; j < len(s) && s[j] != '"'; j++ {
			if s[j] == '\\' && j+1 < len(s) && strings.IndexByte(`"\]`, s[j+1]) >= 0 {
				j++
			} else if s[j] == ']' {
				t.Fatalf("unescaped ] in PARAM-VALUE of %q", s)
			}
			v.WriteByte(s[j])
		}
		if j >= len(s) {
			t.Fatalf("unterminated PARAM-VALUE in %q", s)
		}
		params[name] = v.String()
		i = j + 1
	}
	if s[i] != ']' {
		t.Fatalf("unterminated SD element in %q", s)
	}
	return id, params, s[i+1:]
}

// listenUDP listens on loopback and returns its address and a function
// that returns the next datagram.
func listenUDP(t *testing.T) (string, func() []byte) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String(), func() []byte {
		t.Helper()
		buf := make([]byte, 65536)
		if err := pc.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("read datagram: %v", err)
		}
		return buf[:n]
	}
}

// acceptAll accepts one connection on ln and returns what it reads till
// EOF.
func acceptAll(t *testing.T, ln net.Listener) <-chan []byte {
	t.Helper()
	t.Cleanup(func() { ln.Close() })
	got := make(chan []byte, 1)
	go func() {
		defer close(got)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(conn)
		if err != nil {
			t.Errorf("read: %v", err)
		}
		got <- b
	}()
	return got
}

// acceptAndDrain accepts connections on ln and reads them till they end,
// writing nothing of its own.
func acceptAndDrain(t *testing.T, ln net.Listener) {
	t.Helper()
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
				_, _ = io.Copy(io.Discard, conn)
			}()
		}
	}()
}

// octetFrames splits b into RFC 6587 octet-counted frames.
func octetFrames(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var frames [][]byte
	for len(b) > 0 {
		sp := bytes.IndexByte(b, ' ')
		if sp < 1 {
			t.Fatalf("no MSG-LEN in %q", b)
		}
		n, err := strconv.Atoi(string(b[:sp]))
		if err != nil || n < 1 || b[0] == '0' {
			t.Fatalf("bad MSG-LEN %q", b[:sp])
		}
		if len(b) < sp+1+n {
			t.Fatalf("frame of %d bytes, %d left: %q", n, len(b)-sp-1, b)
		}
		frames = append(frames, b[sp+1:sp+1+n])
		b = b[sp+1+n:]
	}
	return frames
}

func TestSyslogUDP(t *testing.T) {
	addr, recv := listenUDP(t)
	key := `alert-1.syslog-0.1 "q" \ ]`
	at := time.Date(2024, 3, 5, 7, 8, 9, 123456789, time.FixedZone("CET", 3600))
	err := SendSyslog(context.Background(), SyslogAction{Address: addr, Facility: "local4"}, SyslogMessage{
		Time: at, Hostname: "web-1", Severity: 3, MsgID: "ON", Key: key, Text: "pool web: 3 × SERVER_DOWN",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw := recv()
	l := parseSyslogLine(t, raw)
	want := syslogLine{
		PRI: 20*8 + 3, Version: "1", Timestamp: "2024-03-05T06:08:09.123456Z", Hostname: "web-1",
		AppName: DefaultSyslogAppName, ProcID: strconv.Itoa(os.Getpid()), MsgID: "ON",
		SD: `[vigil@32473 key="alert-1.syslog-0.1 \"q\" \\ \]"]`, SDID: "vigil@32473", BOM: true,
		Msg: "pool web: 3 × SERVER_DOWN",
	}
	if l.Params["key"] != key || len(l.Params) != 1 {
		t.Errorf("params %q, want key %q only", l.Params, key)
	}
	l.Params = nil
	if !reflect.DeepEqual(l, want) {
		t.Errorf("got  %+v\nwant %+v\nraw %q", l, want, raw)
	}
	if _, err := time.Parse(time.RFC3339Nano, l.Timestamp); err != nil {
		t.Errorf("timestamp: %v", err)
	}
}

func TestSyslogDefaultsAndNilValues(t *testing.T) {
	addr, recv := listenUDP(t)
	err := SendSyslog(context.Background(), SyslogAction{Address: addr, Protocol: "udp", AppName: "edge"},
		SyslogMessage{Severity: 6, Text: "hi"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := parseSyslogLine(t, recv())
	if l.PRI != 1*8+6 || l.Timestamp != "-" || l.Hostname != "-" || l.AppName != "edge" || l.MsgID != "-" ||
		l.SD != "-" || !l.BOM || l.Msg != "hi" {
		t.Errorf("got %+v", l)
	}
}

func TestSyslogHeaderFields(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		limit    int
	}{
		{"", "-", syslogMaxHostname},
		{"web 1\té", "web_1__", syslogMaxHostname},
		{strings.Repeat("h", 300), strings.Repeat("h", 255), syslogMaxHostname},
		{strings.Repeat("é", 40), strings.Repeat("_", 40), syslogMaxAppName},
		{strings.Repeat("m", 40), strings.Repeat("m", 32), syslogMaxMsgID},
	} {
		if got := syslogField(tc.in, tc.limit); got != tc.want {
			t.Errorf("syslogField(%q, %d) = %q, want %q", tc.in, tc.limit, got, tc.want)
		}
	}
	for _, m := range []SyslogMessage{{Severity: -1}, {Severity: 8}} {
		if _, _, err := formatSyslog(SyslogAction{}, m, 1); err == nil {
			t.Errorf("severity %d accepted", m.Severity)
		}
	}
	if _, _, err := formatSyslog(SyslogAction{Facility: "nope"}, SyslogMessage{}, 1); err == nil {
		t.Error("facility nope accepted")
	}
}

func TestSyslogUDPTruncatesAtRuneBoundary(t *testing.T) {
	addr, recv := listenUDP(t)
	text := strings.Repeat("€", 1000) // 3000 bytes
	err := SendSyslog(context.Background(), SyslogAction{Address: addr}, SyslogMessage{
		Time: time.Now(), Hostname: "web-1", Severity: 2, MsgID: "ON", Key: "alert-1.syslog-0.1", Text: text,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw := recv()
	if len(raw) > 2048 || len(raw) < 2048-2 {
		t.Errorf("datagram of %d bytes, want 2046 to 2048", len(raw))
	}
	if !utf8.Valid(raw) {
		t.Error("datagram cut inside a UTF-8 sequence")
	}
	l := parseSyslogLine(t, raw)
	if !l.BOM || l.Msg == "" || !strings.HasPrefix(text, l.Msg) {
		t.Errorf("message %q is not a prefix of the text", l.Msg)
	}
}

func TestSyslogStreams(t *testing.T) {
	serverTLS, clientTLS := loopbackTLS(t)
	text := "pool wéb: 3 × SERVER_DOWN 日本語 ✓\nsecond line"
	for _, protocol := range []string{"tcp", "tls"} {
		t.Run(protocol, func(t *testing.T) {
			var ln net.Listener
			var err error
			if protocol == "tls" {
				ln, err = tls.Listen("tcp", "127.0.0.1:0", serverTLS)
			} else {
				ln, err = net.Listen("tcp", "127.0.0.1:0")
			}
			if err != nil {
				t.Fatal(err)
			}
			got := acceptAll(t, ln)
			a := SyslogAction{Address: ln.Addr().String(), Protocol: protocol, Facility: "daemon", AppName: "vigil-test"}
			m := SyslogMessage{Time: time.Now(), Hostname: "web-1", Severity: 4, MsgID: "RESOLVED", Key: "k]1", Text: text}
			if err := SendSyslog(context.Background(), a, m, clientTLS); err != nil {
				t.Fatal(err)
			}
			frames := octetFrames(t, <-got)
			if len(frames) != 1 {
				t.Fatalf("%d frames, want 1", len(frames))
			}
			l := parseSyslogLine(t, frames[0])
			if l.PRI != 3*8+4 || l.AppName != "vigil-test" || l.MsgID != "RESOLVED" || l.Params["key"] != "k]1" ||
				!l.BOM || l.Msg != text {
				t.Errorf("got %+v", l)
			}
		})
	}
}

func TestSyslogErrorsNameTheAddress(t *testing.T) {
	serverTLS, _ := loopbackTLS(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().String()
	closed.Close()
	live, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never writes: a TLS handshake waits
	if err != nil {
		t.Fatal(err)
	}
	acceptAndDrain(t, live)
	untrusted, err := tls.Listen("tcp", "127.0.0.1:0", serverTLS)
	if err != nil {
		t.Fatal(err)
	}
	acceptAndDrain(t, untrusted)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	short, cancelShort := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancelShort()

	for _, tc := range []struct {
		name     string
		ctx      context.Context
		a        SyslogAction
		wantIs   error
		wantText string
	}{
		{"refused", context.Background(), SyslogAction{Address: refused, Protocol: "tcp"}, nil, "refused"},
		{"canceled", canceled, SyslogAction{Address: live.Addr().String(), Protocol: "tcp"}, context.Canceled, ""},
		{"handshake deadline", short, SyslogAction{Address: live.Addr().String(), Protocol: "tls"}, context.DeadlineExceeded, ""},
		{"untrusted", context.Background(), SyslogAction{Address: untrusted.Addr().String(), Protocol: "tls"}, nil, "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := SendSyslog(tc.ctx, tc.a, SyslogMessage{Text: "x"}, nil)
			switch {
			case err == nil:
				t.Fatal("no error")
			case !strings.Contains(err.Error(), tc.a.Address):
				t.Errorf("error %q does not name %s", err, tc.a.Address)
			case tc.wantIs != nil && !errors.Is(err, tc.wantIs):
				t.Errorf("error %q is not %v", err, tc.wantIs)
			case !strings.Contains(err.Error(), tc.wantText):
				t.Errorf("error %q does not say %q", err, tc.wantText)
			case errors.Is(err, ErrPermanent):
				t.Errorf("error %q is permanent", err)
			}
		})
	}
}
