package dataplane

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/vigilhq/vigil/dataplane/datascript"
	"github.com/vigilhq/vigil/dataplane/httpmsg"
	"github.com/vigilhq/vigil/dataplane/spec"
)

// clientConn serves one client connection of a virtual service over
// HTTP/1.x: it reads a request head, runs the DataScripts, forwards the
// request to a server on a kept-alive connection, relays the response as
// it arrives, and goes on with the next request.
type clientConn struct {
	l    *listener
	c    net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	head []byte // the current request head, copied out of br
	// rhead is a response head copied out of the server connection's
	// buffer, when its body is read for HTTP_RESP_DATA.
	rhead []byte
	req   httpmsg.Request
	resp  httpmsg.Response
	out   []byte // scratch for heads written to servers and clients
	cw    clientWriter

	client  clientInfo
	ipBytes []byte // client.ip
	rd, wd  deadline
	// idle is set while the connection waits for its next request.
	idle atomic.Bool
}

// readBuffer is the client connection's read buffer; a request head
// larger than the virtual service's max_request_header gets 431.
const writeBuffer = 16 << 10

func (l *listener) serve(c net.Conn) { l.serveHTTP1(c, nil) }

// serveHTTP1 serves an HTTP/1.x connection; cs describes its TLS, nil
// on plain HTTP.
func (l *listener) serveHTTP1(c net.Conn, cs *tls.ConnectionState) {
	vs := l.vs.Load()
	if vs == nil {
		_ = c.Close()
		return
	}
	rw := rawOr(c)
	cc := &clientConn{
		l: l, c: c,
		br:   bufio.NewReaderSize(rw, int(vs.spec.MaxRequestHeader)),
		bw:   bufio.NewWriterSize(rw, writeBuffer),
		head: make([]byte, 0, 1024),
		out:  make([]byte, 0, 1024),
	}
	cc.cw = clientWriter{cc}
	cc.rd.set, cc.wd.set = c.SetReadDeadline, c.SetWriteDeadline
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		cc.client.ip, cc.client.port = a.IP.String(), strconv.Itoa(a.Port)
	}
	cc.ipBytes = []byte(cc.client.ip)
	if cs != nil {
		cc.client.secure = true
		if vs.scripts != nil {
			cc.client.tls = datascript.NewTLSInfo(cs)
		}
	}
	l.conns.Add(1)
	l.track(cc, true)
	defer func() {
		l.track(cc, false)
		l.conns.Add(-1)
		_ = c.Close()
	}()
	for {
		vs := l.vs.Load()
		if vs == nil {
			return
		}
		if !cc.serveOne(vs) {
			return
		}
	}
}

// statusError is a request the proxy answers itself.
type statusError struct {
	status int
	msg    string
}

// serveOne serves one request and reports whether the connection may be
// kept for another.
func (cc *clientConn) serveOne(vs *vsRuntime) bool {
	// Wait for the request's first byte as long as a kept-alive
	// connection may idle, then for the rest of the head.
	t := vs.spec.Timeouts
	if cc.br.Buffered() == 0 {
		cc.rd.after(time.Now(), t.ClientIdle.D())
		cc.idle.Store(true)
		if cc.l.draining.Load() {
			return false
		}
		_, err := cc.br.Peek(1)
		cc.idle.Store(false)
		if err != nil {
			return false
		}
	}
	if b, _ := cc.br.Peek(cc.br.Buffered()); httpmsg.HeadEnd(b) < 0 {
		// The head did not come in one read: the rest has client_header.
		cc.rd.after(time.Now(), t.ClientHeader.D())
	}
	n, err := cc.readHead()
	if err != nil {
		var se *statusError
		if errors.As(err, &se) {
			cc.local(se.status, se.msg, true)
		}
		return false
	}
	cc.head = append(cc.head[:0], peekN(cc.br, n)...)
	_, _ = cc.br.Discard(n)
	if err := httpmsg.ParseRequest(cc.head, &cc.req); err != nil {
		cc.local(400, "bad request\n", true)
		return false
	}
	return cc.proxy(vs)
}

func peekN(br *bufio.Reader, n int) []byte {
	b, _ := br.Peek(n)
	return b
}

// readHead waits until br holds a whole request head and returns its
// length.
func (cc *clientConn) readHead() (int, error) {
	for {
		b, _ := cc.br.Peek(cc.br.Buffered())
		if n := httpmsg.HeadEnd(b); n >= 0 {
			return n, nil
		}
		if cc.br.Buffered() >= cc.br.Size() {
			return 0, &statusError{431, "request header fields too large\n"}
		}
		if _, err := cc.br.Peek(cc.br.Buffered() + 1); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return 0, &statusError{408, "request timeout\n"}
			}
			return 0, err
		}
	}
}

func (e *statusError) Error() string { return e.msg }

// keepAlive reports whether a request lets its connection be reused.
func keepAlive(r *httpmsg.Request) bool {
	v, ok := r.Fields.Get("Connection")
	if r.Minor == 0 {
		return ok && hasToken(v, "keep-alive")
	}
	return !ok || !hasToken(v, "close")
}

// hasToken reports whether a comma-separated header value lists token
// (lower case), without regard to case.
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var t []byte
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		t, v = v[:i], v[min(i+1, len(v)):]
		for len(t) > 0 && (t[0] == ' ' || t[0] == '\t') {
			t = t[1:]
		}
		for len(t) > 0 && (t[len(t)-1] == ' ' || t[len(t)-1] == '\t') {
			t = t[:len(t)-1]
		}
		if equalFoldBytes(t, token) {
			return true
		}
	}
	return false
}

// proxy forwards the parsed request and relays the response; it reports
// whether the client connection may be kept.
func (cc *clientConn) proxy(vs *vsRuntime) bool {
	req := &cc.req
	keep := keepAlive(req)
	kind, length, err := framing(req.Fields, true)
	if err != nil {
		if errors.Is(err, errUnsupportedCoding) {
			cc.local(501, "transfer coding not implemented\n", true)
		} else {
			cc.local(400, "bad request framing\n", true)
		}
		return false
	}
	if max := int64(vs.spec.MaxRequestBody); max > 0 && kind == bodyLength && length > max {
		cc.local(413, "request body too large\n", true)
		cc.linger()
		return false
	}
	upgrade := isUpgrade(req)

	x := &exchange{
		d: cc, l: cc.l, req: &cc.req, resp: &cc.resp, client: &cc.client, vs: vs,
		bodyKind: kind, bodyLen: length, upgrade: upgrade, start: time.Now(),
	}
	pool, b := x.route()
	if b == nil {
		return keep && x.localKeep
	}

	// 100-continue is answered here, so that the body can be read while
	// the server is not yet asked.
	if v, ok := req.Fields.Get("Expect"); ok && hasToken(v, "100-continue") {
		req.Fields.Remove("Expect")
		if kind != bodyNone {
			_, _ = cc.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			_ = cc.bw.Flush()
		}
	}
	x.forwarded(cc.ipBytes)
	cc.out = appendUpstreamHead(cc.out[:0], req, vs, upgrade)

	b.active.Add(1)
	b.requests.Add(1)
	defer b.active.Add(-1)
	up, err := cc.send(b.backend, x.timeout(pool), kind, length, x.reqBody)
	if err != nil {
		return x.upstreamFailed(err, keep)
	}
	return cc.relayResponse(x, up, pool, keep)
}

// isUpgrade reports whether the request asks for a protocol upgrade
// (WebSocket).
func isUpgrade(r *httpmsg.Request) bool {
	c, ok := r.Fields.Get("Connection")
	return ok && r.Fields.Has("Upgrade") && hasToken(c, "upgrade")
}

// hopByHop reports whether a field is hop-by-hop (RFC 9110 7.6.1) and is
// not forwarded.
func hopByHop(name []byte) bool {
	switch len(name) {
	case 2:
		return equalFoldBytes(name, "te")
	case 7:
		return equalFoldBytes(name, "trailer") || equalFoldBytes(name, "upgrade")
	case 10:
		return equalFoldBytes(name, "connection") || equalFoldBytes(name, "keep-alive")
	case 16:
		return equalFoldBytes(name, "proxy-connection")
	}
	return false
}

// forwarded sets X-Forwarded-For and X-Forwarded-Proto for the server:
// the client's address is appended to the last X-Forwarded-For field (the
// list's end) and X-Forwarded-Proto is replaced, each unless a script
// changed that header, which then goes as the script left it (Avi users
// set X-Forwarded-For from a script with the profile's insertion off).
func forwarded(req *httpmsg.Request, clientIP, scheme []byte, scripted bool, xffBefore, xfpBefore fieldMark) {
	setXFF := !scripted || markOf(req.Fields, "x-forwarded-for") == xffBefore
	setXFP := !scripted || markOf(req.Fields, "x-forwarded-proto") == xfpBefore
	last := -1
	out := req.Fields[:0]
	for _, f := range req.Fields {
		switch {
		case setXFP && len(f.Name) == 17 && equalFoldBytes(f.Name, "x-forwarded-proto"):
			continue
		case setXFF && len(f.Name) == 15 && equalFoldBytes(f.Name, "x-forwarded-for"):
			last = len(out)
		}
		out = append(out, f)
	}
	switch {
	case !setXFF:
	case last >= 0:
		v := out[last].Value
		out[last].Value = append(append(append(make([]byte, 0, len(v)+2+len(clientIP)), v...), ", "...), clientIP...)
	default:
		out = append(out, httpmsg.Field{Name: xffName, Value: clientIP})
	}
	if setXFP {
		out = append(out, httpmsg.Field{Name: xfpName, Value: scheme})
	}
	req.Fields = out
}

// fieldMark tells whether the fields of a name changed: how many there
// are, and where the last one's value is.
type fieldMark struct {
	n    int
	last *byte
	size int
}

// markOf marks the fields named lower (lower case).
func markOf(f httpmsg.Fields, lower string) fieldMark {
	var m fieldMark
	for i := range f {
		if len(f[i].Name) == len(lower) && equalFoldBytes(f[i].Name, lower) {
			m.n++
			m.size = len(f[i].Value)
			m.last = nil
			if len(f[i].Value) > 0 {
				m.last = &f[i].Value[0]
			}
		}
	}
	return m
}

var (
	xffName = []byte("X-Forwarded-For")
	xfpName = []byte("X-Forwarded-Proto")
)

// appendUpstreamHead writes the request head for the server, without the
// hop-by-hop fields (but with Upgrade for a WebSocket).
func appendUpstreamHead(out []byte, req *httpmsg.Request, vs *vsRuntime, upgrade bool) []byte {
	out = append(out, req.Method...)
	out = append(out, ' ')
	out = append(out, req.Target...)
	out = append(out, " HTTP/1.1\r\n"...)
	for _, f := range req.Fields {
		if hopByHop(f.Name) && (!upgrade || !equalFoldBytes(f.Name, "upgrade")) {
			continue
		}
		out = appendField(out, f.Name, f.Value)
	}
	if upgrade {
		out = append(out, "Connection: Upgrade\r\n"...)
	}
	if req.Minor == 0 && !req.Fields.Has("Host") {
		// An HTTP/1.0 request may lack Host; HTTP/1.1 to the server needs it.
		out = append(out, "Host: "...)
		out = append(out, vs.host...)
		out = append(out, "\r\n"...)
	}
	return append(out, "\r\n"...)
}

func appendField(out, name, value []byte) []byte {
	out = append(out, name...)
	out = append(out, ": "...)
	out = append(out, value...)
	return append(out, "\r\n"...)
}

// send writes the request head and body to a connection to b, retrying
// once on a new connection when a reused one turns out closed before any
// of the body was read from the client.
func (cc *clientConn) send(b *backend, timeout time.Duration, kind bodyKind, length int64, buffered []byte) (*upConn, error) {
	if buffered != nil {
		// The body was read for HTTP_REQ_DATA: it goes with the head, and
		// the request can be sent again like a bodiless one.
		cc.out = append(cc.out, buffered...)
		kind = bodyNone
	}
	for attempt := 0; ; attempt++ {
		up, err := b.get(context.Background())
		if err != nil {
			return nil, err
		}
		up.wd.after(time.Now(), timeout)
		if _, err := up.Write(cc.out); err != nil {
			up.close()
			if up.reused && attempt == 0 {
				continue
			}
			return nil, err
		}
		if kind == bodyNone {
			// Check that a reused connection answers: the first byte of
			// the response arrives, or the server had closed it.
			up.rd.after(time.Now(), timeout)
			if _, err := up.br.Peek(1); err != nil {
				up.close()
				if up.reused && attempt == 0 && !errors.Is(err, os.ErrDeadlineExceeded) {
					continue
				}
				return nil, err
			}
			return up, nil
		}
		if err := cc.sendBody(up, kind, length); err != nil {
			up.close()
			return nil, err
		}
		return up, nil
	}
}

func (cc *clientConn) sendBody(up *upConn, kind bodyKind, length int64) error {
	vs := cc.l.vs.Load()
	bodyTimeout := 60 * time.Second
	if vs != nil {
		bodyTimeout = vs.spec.Timeouts.ClientBody.D()
	}
	w := bufio.NewWriterSize(up, 16<<10)
	before := func() { cc.rd.after(time.Now(), bodyTimeout) }
	var err error
	switch kind {
	case bodyLength:
		err = relayLength(w, cc.br, length, before)
	case bodyChunked:
		err = relayChunked(w, cc.br, before)
	}
	if err != nil {
		return &clientBodyError{err}
	}
	return w.Flush()
}

// clientBodyError is a failure reading the request body from the client.
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string { return "read request body: " + e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

// relayResponse reads the server's response head, runs the response
// DataScripts, and relays head and body to the client.
func (cc *clientConn) relayResponse(x *exchange, up *upConn, pool *poolRuntime, keep bool) bool {
	timeout := x.timeout(pool)
	deadline := func() { up.rd.after(time.Now(), timeout) }
	for {
		if up.br.Buffered() == 0 {
			// send left a deadline for the first byte; a response that
			// has not begun gets a new one here.
			deadline()
		}
		n, err := readResponseHead(up.br)
		if err != nil {
			up.close()
			return x.upstreamFailed(err, keep)
		}
		head, _ := up.br.Peek(n)
		if err := httpmsg.ParseResponse(head, &cc.resp); err != nil {
			up.close()
			return x.upstreamFailed(err, keep)
		}
		if cc.resp.Status >= 100 && cc.resp.Status < 200 && cc.resp.Status != 101 {
			// An interim response goes to the client as it is.
			_, _ = cc.bw.Write(head)
			_, _ = up.br.Discard(n)
			continue
		}
		resp := &cc.resp
		x.status = resp.Status
		kind, length, ferr := framing(resp.Fields, false)
		if ferr != nil {
			up.close()
			return x.upstreamFailed(ferr, keep)
		}
		if headRequest(&cc.req) || resp.Status == 204 || resp.Status == 304 {
			kind = bodyNone
		}
		switchProto := resp.Status == 101 && x.upgrade
		if !x.runResponseScripts() {
			_, _ = up.br.Discard(n)
			up.close()
			return keep && x.localKeep
		}
		var body []byte
		if kind == bodyLength && x.wantsResponseBody(length) {
			// Read the body for HTTP_RESP_DATA; the head stays in up.br,
			// so it is copied first.
			cc.rhead = append(cc.rhead[:0], head...)
			_, _ = up.br.Discard(n)
			if err := httpmsg.ParseResponse(cc.rhead, resp); err != nil {
				up.close()
				return x.upstreamFailed(err, keep)
			}
			body = make([]byte, length)
			if _, err := io.ReadFull(up.br, body); err != nil {
				up.close()
				return x.upstreamFailed(err, keep)
			}
			n = 0
			x.txn.RespBody = body
			if !x.scripted(spec.EvtHTTPRespData) {
				up.b.put(up)
				return keep && x.localKeep
			}
			kind = bodyNone
		}
		if kind == bodyClose || !keepAlive(&cc.req) {
			keep = false
		}
		cc.out = cc.appendResponseHead(cc.out[:0], resp, keep, switchProto)
		_, _ = up.br.Discard(n)
		// cc.resp's fields pointed into up.br, now discarded: the head is
		// in cc.out.
		if _, err := cc.bw.Write(cc.out); err != nil {
			up.close()
			return false
		}
		if switchProto {
			x.done()
			cc.tunnel(up)
			return false
		}
		if body != nil {
			_, _ = cc.bw.Write(body)
		}
		var rerr error
		switch kind {
		case bodyLength:
			rerr = relayLength(cc.cw, up.br, length, deadline)
		case bodyChunked:
			rerr = relayChunked(cc.cw, up.br, deadline)
		case bodyClose:
			rerr = relayUntilEOF(cc.cw, up.br, deadline)
		}
		if rerr != nil || kind == bodyClose {
			up.close()
		} else {
			up.b.put(up)
		}
		if err := cc.cw.Flush(); err != nil {
			return false
		}
		x.done()
		return rerr == nil && keep
	}
}

func headRequest(r *httpmsg.Request) bool {
	return len(r.Method) == 4 && string(r.Method) == "HEAD"
}

// readResponseHead waits until br holds a whole response head.
func readResponseHead(br *bufio.Reader) (int, error) {
	for {
		b, _ := br.Peek(br.Buffered())
		if n := httpmsg.HeadEnd(b); n >= 0 {
			return n, nil
		}
		if br.Buffered() >= br.Size() {
			return 0, errors.New("response head too large")
		}
		if _, err := br.Peek(br.Buffered() + 1); err != nil {
			return 0, err
		}
	}
}

// appendResponseHead writes the response head for the client: hop-by-hop
// fields dropped, Connection set as the proxy keeps the connection or not.
func (cc *clientConn) appendResponseHead(out []byte, r *httpmsg.Response, keep, switchProto bool) []byte {
	out = append(out, "HTTP/1.1 "...)
	out = strconv.AppendInt(out, int64(r.Status), 10)
	out = append(out, ' ')
	out = append(out, r.Reason...)
	out = append(out, "\r\n"...)
	for _, f := range r.Fields {
		if hopByHop(f.Name) {
			if switchProto && equalFoldBytes(f.Name, "upgrade") {
				out = appendField(out, f.Name, f.Value)
			}
			continue
		}
		out = appendField(out, f.Name, f.Value)
	}
	switch {
	case switchProto:
		out = append(out, "Connection: Upgrade\r\n"...)
	case !keep:
		out = append(out, "Connection: close\r\n"...)
	case cc.req.Minor == 0:
		out = append(out, "Connection: keep-alive\r\n"...)
	}
	return append(out, "\r\n"...)
}

// tunnel copies bytes both ways between the client and the server after a
// protocol switch, until either side ends.
func (cc *clientConn) tunnel(up *upConn) {
	_ = cc.bw.Flush()
	cc.rd.clear()
	cc.wd.clear()
	up.rd.clear()
	up.wd.clear()
	done := make(chan struct{})
	go func() {
		// Server to client: what up.br holds first.
		_, _ = up.br.WriteTo(cc.c)
		_ = cc.c.Close()
		close(done)
	}()
	_, _ = cc.br.WriteTo(up)
	_ = up.Close()
	<-done
	up.b.open.Add(-1)
}

// Lingering close: after an answer given before the request's body was
// read, the body is read and dropped for a while so that the client,
// still sending, reads the answer instead of a reset.
const (
	lingerTime = 5 * time.Second
	lingerGap  = time.Second
)

func (cc *clientConn) linger() {
	if tc, ok := cc.c.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
	}
	end := time.Now().Add(lingerTime)
	buf := make([]byte, 32<<10)
	for time.Now().Before(end) {
		d := time.Now().Add(lingerGap)
		if d.After(end) {
			d = end
		}
		cc.rd.at = d
		_ = cc.c.SetReadDeadline(d)
		if _, err := cc.br.Read(buf); err != nil {
			return
		}
	}
}

// respondWith answers with a script's response.
func (cc *clientConn) respondWith(status int, fields httpmsg.Fields, body []byte, closeConn bool) {
	out := cc.out[:0]
	out = append(out, "HTTP/1.1 "...)
	out = strconv.AppendInt(out, int64(status), 10)
	out = append(out, ' ')
	out = append(out, http.StatusText(status)...)
	out = append(out, "\r\n"...)
	for _, f := range fields {
		if hopByHop(f.Name) || equalFoldBytes(f.Name, "content-length") || equalFoldBytes(f.Name, "transfer-encoding") {
			continue
		}
		out = appendField(out, f.Name, f.Value)
	}
	out = append(out, "Content-Length: "...)
	out = strconv.AppendInt(out, int64(len(body)), 10)
	out = append(out, "\r\n"...)
	if closeConn {
		out = append(out, "Connection: close\r\n"...)
	}
	out = append(out, "\r\n"...)
	out = append(out, body...)
	cc.out = out
	_, _ = cc.bw.Write(out)
	_ = cc.cw.Flush()
}

// readBody reads a request body whole.
func (cc *clientConn) readBody(kind bodyKind, n, limit int64, timeout time.Duration) ([]byte, error) {
	if kind == bodyLength && n > limit {
		return nil, errBodyTooLarge
	}
	cc.rd.after(time.Now(), timeout)
	if kind == bodyLength {
		body := make([]byte, n)
		if _, err := io.ReadFull(cc.br, body); err != nil {
			return nil, err
		}
		return body, nil
	}
	body, err := io.ReadAll(io.LimitReader(httputil.NewChunkedReader(cc.br), limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > limit {
		return nil, errBodyTooLarge
	}
	return body, skipTrailers(cc.br)
}

// abort closes the connection; with reset, the close sends an RST.
func (cc *clientConn) abort(reset bool) {
	if tc, ok := cc.c.(*net.TCPConn); ok && reset {
		_ = tc.SetLinger(0)
	}
}

// local answers the client from the proxy itself.
func (cc *clientConn) local(status int, body string, closeConn bool) {
	cc.respondWith(status, plainText, []byte(body), closeConn)
}

// plainText is the Content-Type of the proxy's own answers.
var plainText = httpmsg.Fields{{Name: []byte("Content-Type"), Value: []byte("text/plain; charset=utf-8")}}

// clientWriter writes to the client, each flush bounded by the virtual
// service's client_write timeout.
type clientWriter struct{ cc *clientConn }

func (w clientWriter) Write(p []byte) (int, error) { return w.cc.bw.Write(p) }

func (w clientWriter) Flush() error {
	if w.cc.bw.Buffered() == 0 {
		return nil
	}
	t := 60 * time.Second
	if vs := w.cc.l.vs.Load(); vs != nil {
		t = vs.spec.Timeouts.ClientWrite.D()
	}
	w.cc.wd.after(time.Now(), t)
	return w.cc.bw.Flush()
}
