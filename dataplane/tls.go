package dataplane

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"time"

	"github.com/vigilhq/vigil/dataplane/datascript"
	"github.com/vigilhq/vigil/dataplane/httpmsg"
	"github.com/vigilhq/vigil/dataplane/spec"
)

// CertSource gives the PEM certificate chain and key held by a Secret.
type CertSource func(ctx context.Context, secret string) (certPEM, keyPEM []byte, err error)

// tlsState is a TLS virtual service's certificate and protocols, swapped
// whole when its Secret or spec changes.
type tlsState struct {
	config *tls.Config
}

// serveTLS completes the handshake and hands the connection to the path
// its protocol takes: HTTP/2 to net/http, HTTP/1.1 to the proxy's own.
func (l *listener) serveTLS(c net.Conn) {
	vs := l.vs.Load()
	st := l.tls.Load()
	if vs == nil || st == nil {
		_ = c.Close()
		return
	}
	tc := tls.Server(c, st.config)
	ctx, cancel := context.WithTimeout(context.Background(), vs.spec.Timeouts.ClientHeader.D())
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		l.log.Debug("TLS handshake", "client", c.RemoteAddr().String(), "err", err)
		_ = c.Close()
		return
	}
	cs := tc.ConnectionState()
	if cs.NegotiatedProtocol == "h2" {
		l.h2.serve(tc)
		return
	}
	l.serveHTTP1(tc, &cs)
}

// h2Server serves the HTTP/2 connections of a listener through net/http.
type h2Server struct {
	once  sync.Once
	srv   *http.Server
	conns chan net.Conn
	ln    *chanListener
}

func (h *h2Server) serve(c net.Conn) {
	select {
	case h.conns <- c:
	case <-h.ln.done:
		_ = c.Close()
	}
}

// newH2Server starts net/http on the connections that negotiated h2.
func (l *listener) newH2Server() *h2Server {
	h := &h2Server{conns: make(chan net.Conn)}
	h.ln = &chanListener{conns: h.conns, done: make(chan struct{}), addr: l.ln.Addr()}
	h.srv = &http.Server{
		Handler:           http.HandlerFunc(l.serveH2),
		ReadHeaderTimeout: spec.DefaultClientHeaderTimeout,
		IdleTimeout:       spec.DefaultClientIdleTimeout,
	}
	go func() { _ = h.srv.Serve(h.ln) }()
	return h
}

func (h *h2Server) close() {
	h.once.Do(func() {
		close(h.ln.done)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.srv.Shutdown(ctx)
	})
}

// chanListener is a net.Listener of connections handed over on a channel.
type chanListener struct {
	conns chan net.Conn
	done  chan struct{}
	addr  net.Addr
	once  sync.Once
}

func (c *chanListener) Accept() (net.Conn, error) {
	select {
	case conn := <-c.conns:
		return conn, nil
	case <-c.done:
		return nil, net.ErrClosed
	}
}

func (c *chanListener) Close() error {
	c.once.Do(func() {
		select {
		case <-c.done:
		default:
			close(c.done)
		}
	})
	return nil
}

func (c *chanListener) Addr() net.Addr { return c.addr }

// h2Client is an HTTP/2 stream as an exchange's client side.
type h2Client struct {
	w http.ResponseWriter
	r *http.Request
}

func (h *h2Client) local(status int, body string, _ bool) {
	h.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	h.w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	h.w.WriteHeader(status)
	_, _ = io.WriteString(h.w, body)
}

func (h *h2Client) respondWith(status int, fields httpmsg.Fields, body []byte, _ bool) {
	hd := h.w.Header()
	for _, f := range fields {
		if hopByHop(f.Name) || equalFoldBytes(f.Name, "content-length") || equalFoldBytes(f.Name, "transfer-encoding") {
			continue
		}
		hd.Add(string(f.Name), string(f.Value))
	}
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	h.w.WriteHeader(status)
	_, _ = h.w.Write(body)
}

func (h *h2Client) readBody(kind bodyKind, n, limit int64, timeout time.Duration) ([]byte, error) {
	if kind == bodyLength && n > limit {
		return nil, errBodyTooLarge
	}
	_ = http.NewResponseController(h.w).SetReadDeadline(time.Now().Add(timeout))
	body, err := io.ReadAll(io.LimitReader(h.r.Body, limit+1))
	if err == nil && int64(len(body)) > limit {
		err = errBodyTooLarge
	}
	return body, err
}

// abort ends the stream with a reset, as net/http does on a panic with
// ErrAbortHandler.
func (h *h2Client) abort(bool) { panic(http.ErrAbortHandler) }

// serveH2 proxies one HTTP/2 request: the same scripts and servers as the
// HTTP/1.1 path; the request goes to the server as HTTP/1.1.
func (l *listener) serveH2(w http.ResponseWriter, r *http.Request) {
	vs := l.vs.Load()
	if vs == nil {
		http.Error(w, "virtual service gone", http.StatusServiceUnavailable)
		return
	}
	req := &httpmsg.Request{Method: []byte(r.Method), Target: []byte(r.RequestURI), Major: 1, Minor: 1}
	req.Fields = append(req.Fields, httpmsg.Field{Name: []byte("Host"), Value: []byte(r.Host)})
	for name, vals := range r.Header {
		for _, v := range vals {
			req.Fields = append(req.Fields, httpmsg.Field{Name: []byte(name), Value: []byte(v)})
		}
	}
	kind, length := bodyNone, int64(0)
	switch {
	case r.ContentLength > 0:
		kind, length = bodyLength, r.ContentLength
	case r.ContentLength < 0:
		kind = bodyChunked
	}
	if max := int64(vs.spec.MaxRequestBody); max > 0 && kind == bodyLength && length > max {
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	client := &clientInfo{secure: true}
	if host, port, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		client.ip, client.port = host, port
	}
	if vs.scripts != nil && r.TLS != nil {
		client.tls = datascript.NewTLSInfo(r.TLS)
	}
	h := &h2Client{w: w, r: r}
	x := &exchange{
		d: h, l: l, req: req, resp: &httpmsg.Response{}, client: client, vs: vs,
		bodyKind: kind, bodyLen: length, start: time.Now(),
	}
	pool, m := x.route()
	if m == nil {
		return
	}
	req.Fields.Remove("Expect")
	req.Fields.Remove("Content-Length")
	req.Fields.Remove("Transfer-Encoding")
	x.forwarded([]byte(client.ip))
	head := appendUpstreamHead(nil, req, vs, false)
	var body io.Reader = r.Body
	if x.reqBody != nil {
		kind, length, body = bodyLength, int64(len(x.reqBody)), bytes.NewReader(x.reqBody)
	}
	m.active.Add(1)
	m.requests.Add(1)
	defer m.active.Add(-1)
	up, err := sendH2(m.backend, pool, head, kind, length, body)
	if err != nil {
		x.upstreamFailed(err, false)
		return
	}
	l.relayH2Response(x, up, pool, w)
}

// sendH2 writes the head and the body of an HTTP/2 request to a server
// connection, chunked when its length is unknown.
func sendH2(b *backend, pool *poolRuntime, head []byte, kind bodyKind, length int64, body io.Reader) (*upConn, error) {
	switch kind {
	case bodyChunked:
		head = appendField(head[:len(head)-2], []byte("Transfer-Encoding"), []byte("chunked"))
		head = append(head, "\r\n"...)
	case bodyLength:
		head = appendField(head[:len(head)-2], []byte("Content-Length"), strconv.AppendInt(nil, length, 10))
		head = append(head, "\r\n"...)
	}
	up, err := b.get(context.Background())
	if err != nil {
		return nil, err
	}
	up.wd.after(time.Now(), pool.timeout)
	bw := bufio.NewWriterSize(up, 16<<10)
	_, _ = bw.Write(head)
	switch kind {
	case bodyLength:
		_, err = io.CopyN(bw, body, length)
	case bodyChunked:
		cw := httputil.NewChunkedWriter(bw)
		if _, err = io.Copy(cw, body); err == nil {
			err = cw.Close()
		}
		if err == nil {
			_, err = bw.WriteString("\r\n")
		}
	}
	if err != nil {
		up.close()
		return nil, &clientBodyError{err}
	}
	if err := bw.Flush(); err != nil {
		up.close()
		return nil, err
	}
	return up, nil
}

// relayH2Response reads the server's response and writes it to the
// HTTP/2 stream, flushing as the body arrives.
func (l *listener) relayH2Response(x *exchange, up *upConn, pool *poolRuntime, w http.ResponseWriter) {
	timeout := x.timeout(pool)
	deadline := func() { up.rd.after(time.Now(), timeout) }
	var n int
	for {
		deadline()
		var err error
		if n, err = readResponseHead(up.br); err != nil {
			up.close()
			x.upstreamFailed(err, false)
			return
		}
		head, _ := up.br.Peek(n)
		if err := httpmsg.ParseResponse(head, x.resp); err != nil {
			up.close()
			x.upstreamFailed(err, false)
			return
		}
		if x.resp.Status >= 200 || x.resp.Status == 101 {
			break
		}
		_, _ = up.br.Discard(n) // interim responses are not relayed on HTTP/2
	}
	resp := x.resp
	x.status = resp.Status
	kind, length, err := framing(resp.Fields, false)
	if err != nil || resp.Status == 101 {
		up.close()
		x.upstreamFailed(fmt.Errorf("%w: status %d", errBadFraming, resp.Status), false)
		return
	}
	if x.req.Method != nil && string(x.req.Method) == "HEAD" || resp.Status == 204 || resp.Status == 304 {
		kind = bodyNone
	}
	if !x.runResponseScripts() {
		_, _ = up.br.Discard(n)
		up.close()
		return
	}
	hd := w.Header()
	for _, f := range resp.Fields {
		if hopByHop(f.Name) || equalFoldBytes(f.Name, "transfer-encoding") {
			continue
		}
		hd.Add(string(f.Name), string(f.Value))
	}
	_, _ = up.br.Discard(n)
	w.WriteHeader(resp.Status)
	fw := &h2Writer{w: w, rc: http.NewResponseController(w)}
	var rerr error
	switch kind {
	case bodyLength:
		rerr = relayLength(fw, up.br, length, deadline)
	case bodyChunked:
		rerr = relayDechunked(fw, up.br, deadline)
	case bodyClose:
		rerr = relayUntilEOF(fw, up.br, deadline)
	}
	_ = fw.Flush()
	if rerr != nil || kind == bodyClose {
		up.close()
	} else {
		up.b.put(up)
	}
	x.done()
	if rerr != nil {
		// The response cannot be completed: reset the stream.
		panic(http.ErrAbortHandler)
	}
}

// h2Writer writes a relayed body to an HTTP/2 stream.
type h2Writer struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (h *h2Writer) Write(p []byte) (int, error) { return h.w.Write(p) }
func (h *h2Writer) Flush() error {
	err := h.rc.Flush()
	if errors.Is(err, http.ErrNotSupported) {
		return nil
	}
	return err
}

// relayDechunked copies a chunked body's data (without its framing) from
// src to dst, flushing whenever src has nothing more buffered.
func relayDechunked(dst flusher, src *bufio.Reader, before func()) error {
	cr := httputil.NewChunkedReader(src)
	buf := make([]byte, 16<<10)
	for {
		if err := awaitData(dst, src, before, false); err != nil {
			return err
		}
		n, err := cr.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return skipTrailers(src)
		}
		if err != nil {
			return err
		}
	}
}
