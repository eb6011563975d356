package dataplane

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/vigilhq/vigil/dataplane/datascript"
	"github.com/vigilhq/vigil/dataplane/httpmsg"
	"github.com/vigilhq/vigil/dataplane/spec"
)

// exchange is one request and its response as they pass through the
// proxy: what the DataScripts decided and what the proxy chose.
type exchange struct {
	d        downstream
	l        *listener
	req      *httpmsg.Request
	resp     *httpmsg.Response
	client   *clientInfo
	vs       *vsRuntime
	bodyKind bodyKind
	bodyLen  int64
	upgrade  bool
	start    time.Time
	txn      *datascript.Txn // nil when the virtual service has no scripts

	// Set by DataScripts.
	pool          *poolRuntime
	serverIP      string
	serverPort    int
	chash         []byte
	serverTimeout time.Duration
	// reqBody is the request body, read whole for HTTP_REQ_DATA.
	reqBody []byte
	// localKeep is whether a response the proxy gave itself lets the
	// client connection be kept.
	localKeep bool

	server *member
	status int

	// The X-Forwarded headers as the request scripts found them.
	xffMark, xfpMark fieldMark
}

// forwarded sets the X-Forwarded headers for the server (see forwarded).
func (x *exchange) forwarded(clientIP []byte) {
	forwarded(x.req, clientIP, x.vs.schemeBytes, x.txn != nil, x.xffMark, x.xfpMark)
}

var requestSeq atomic.Uint64

// downstream is the client side of an exchange: an HTTP/1.x connection
// the proxy serves itself, or an HTTP/2 stream served through net/http.
type downstream interface {
	// local answers with a plain-text body.
	local(status int, body string, closeConn bool)
	// respondWith answers with fields and a body; Content-Length is set
	// here and hop-by-hop fields are dropped.
	respondWith(status int, fields httpmsg.Fields, body []byte, closeConn bool)
	// readBody reads the request body whole: n bytes, or a chunked body
	// of unknown length. A body over limit is errBodyTooLarge.
	readBody(kind bodyKind, n, limit int64, timeout time.Duration) ([]byte, error)
	// abort closes the client connection, with a reset when asked.
	abort(reset bool)
}

// clientInfo is the client end of a connection.
type clientInfo struct {
	ip, port string
	secure   bool
	tls      *datascript.TLSInfo
}

// scripted runs the scripts of evt when the virtual service has any for
// it. It reports whether the exchange goes on; when it does not, the
// client has been answered (a script's response, a 500 for a failed
// script, a 503 when every script state is busy).
func (x *exchange) scripted(evt string) bool {
	e := x.vs.scripts
	if e == nil || !e.Has(evt) {
		return true
	}
	t := x.txn
	err := e.Run(context.Background(), evt, t)
	var se *datascript.ScriptError
	switch {
	case err == nil:
	case errors.As(err, &se):
		x.vs.pub.scriptFailed(x.vs.name, se)
		x.respond(500, "internal server error: a DataScript failed\n", x.bodyUnread(evt))
		return false
	case errors.Is(err, datascript.ErrBusy):
		x.respond(503, "too many DataScripts running\n", true)
		return false
	default:
		x.respond(500, "internal server error\n", x.bodyUnread(evt))
		return false
	}
	switch t.Action.Kind {
	case datascript.ActionRespond:
		x.scriptResponse()
		return false
	case datascript.ActionClose:
		x.d.abort(t.Action.Reset)
		x.localKeep = false
		x.status = 0
		x.done()
		return false
	}
	if t.Pool != "" {
		x.pool = x.vs.pools[t.Pool]
		x.serverIP, x.serverPort = t.Server, t.Port
	}
	if t.CHash != "" {
		x.chash = append(x.chash[:0], t.CHash...)
	}
	if t.ServerTimeout > 0 {
		x.serverTimeout = t.ServerTimeout
	}
	return true
}

// bodyUnread reports whether the request's body may be left unread when a
// script of evt ends the exchange: the connection cannot then carry
// another request, or the body would be read as one. By HTTP_RESP the
// body has been sent.
func (x *exchange) bodyUnread(evt string) bool {
	return x.bodyKind != bodyNone && x.reqBody == nil && evt != spec.EvtHTTPResp && evt != spec.EvtHTTPRespData
}

// runRequestScripts prepares the transaction and runs HTTP_REQ, then
// HTTP_REQ_DATA on a body that fits the buffer; false means the client
// was answered.
func (x *exchange) runRequestScripts() bool {
	if x.vs.scripts == nil {
		return true
	}
	t := txnPool.Get().(*datascript.Txn)
	t.Reset()
	x.txn = t
	t.Req = x.req
	t.ClientIP, t.ClientPort, t.VSIP, t.VSPort = x.client.ip, x.client.port, x.vs.ip, x.vs.port
	t.Secure, t.TLS = x.client.secure, x.client.tls
	t.RequestSeq = requestSeq.Add(1)
	x.xffMark, x.xfpMark = markOf(x.req.Fields, "x-forwarded-for"), markOf(x.req.Fields, "x-forwarded-proto")
	if !x.scripted(spec.EvtHTTPReq) {
		return false
	}
	if !x.vs.scripts.Has(spec.EvtHTTPReqData) || x.bodyKind == bodyNone {
		return true
	}
	// The body is read whole for HTTP_REQ_DATA; one that does not fit the
	// buffer is refused rather than passed unseen, so that a script that
	// checks bodies cannot be gone round with a large or chunked one.
	limit := int64(x.vs.spec.RequestBodyBuffer)
	if t.ReqBodyBufferSize > 0 {
		limit = int64(t.ReqBodyBufferSize)
	}
	body, err := x.d.readBody(x.bodyKind, x.bodyLen, limit, x.vs.spec.Timeouts.ClientBody.D())
	if errors.Is(err, errBodyTooLarge) {
		x.respond(413, "request body larger than the DataScript body buffer\n", true)
		if l, ok := x.d.(interface{ linger() }); ok {
			l.linger()
		}
		return false
	}
	if err != nil {
		x.localKeep = false
		x.done()
		return false
	}
	x.reqBody, t.ReqBody = body, body
	x.req.Fields.Remove("Transfer-Encoding")
	x.req.Fields.Replace("Content-Length", strconv.Itoa(len(body)))
	return x.scripted(spec.EvtHTTPReqData)
}

// errBodyTooLarge is a request body over the buffer of HTTP_REQ_DATA.
var errBodyTooLarge = errors.New("request body larger than the buffer")

// lbFailed runs HTTP_LB_FAILED when no server could be chosen; false
// means a script answered.
func (x *exchange) lbFailed() bool {
	if x.txn == nil {
		return true
	}
	return x.scripted(spec.EvtHTTPLBFailed)
}

// lbDone runs HTTP_LB_DONE once a server is chosen; false means a script
// answered.
func (x *exchange) lbDone() bool {
	if x.txn == nil {
		return true
	}
	x.txn.ServerIP = x.server.ip
	return x.scripted(spec.EvtHTTPLBDone)
}

// runResponseScripts runs HTTP_RESP on the server's response head; false
// means a script answered instead.
func (x *exchange) runResponseScripts() bool {
	if x.txn == nil {
		return true
	}
	x.txn.Resp = x.resp
	return x.scripted(spec.EvtHTTPResp)
}

// wantsResponseBody reports whether a response body of length bytes is
// read whole for HTTP_RESP_DATA: an HTTP_RESP script asked for it with
// avi.http.set_response_body_buffer_size, and it fits.
func (x *exchange) wantsResponseBody(length int64) bool {
	return x.txn != nil && x.txn.RespBodyBufferSize > 0 && length <= int64(x.txn.RespBodyBufferSize) &&
		x.vs.scripts.Has(spec.EvtHTTPRespData)
}

// done ends the exchange: the access log line, the transaction back to
// its pool.
func (x *exchange) done() {
	if c := x.status / 100; c >= 1 && c <= 5 {
		x.l.statuses[c-1].Add(1)
	}
	if x.server != nil && x.status != 0 {
		x.server.latency.observe(time.Since(x.start))
	}
	if x.vs.spec.LogsAccess() {
		x.logAccess()
	}
	if x.txn != nil {
		x.txn.Reset()
		txnPool.Put(x.txn)
		x.txn = nil
	}
}

func (x *exchange) logAccess() {
	attrs := []slog.Attr{
		slog.String("virtual_service", x.vs.name),
		slog.String("client_ip", x.client.ip),
		slog.String("method", string(x.req.Method)),
		slog.String("uri", string(x.req.Target)),
		slog.Int("status", x.status),
		slog.Float64("duration_ms", float64(time.Since(x.start).Microseconds())/1000),
	}
	if x.server != nil {
		attrs = append(attrs, slog.String("pool", x.server.pool), slog.String("server", x.server.addr))
	}
	if x.txn != nil && len(x.txn.Log) > 0 {
		attrs = append(attrs, slog.Any("datascript_log", x.txn.Log))
	}
	x.vs.accessLog.LogAttrs(context.Background(), slog.LevelInfo, "access", attrs...)
}

// respond answers the client from the proxy and ends the exchange.
func (x *exchange) respond(status int, body string, closeConn bool) {
	x.status = status
	x.localKeep = !closeConn
	x.d.local(status, body, closeConn)
	x.done()
}

// scriptResponse sends the local response a script gave.
func (x *exchange) scriptResponse() {
	a := &x.txn.Action
	// The request's body, if any, was not read: the connection cannot
	// carry another request.
	keep := x.bodyKind == bodyNone || x.reqBody != nil
	x.status, x.localKeep = a.Status, keep
	x.d.respondWith(a.Status, a.Header, a.Body, !keep)
	x.done()
}

// timeout is the server timeout of the request: a script's, else the
// pool's.
func (x *exchange) timeout(p *poolRuntime) time.Duration {
	if x.serverTimeout > 0 {
		return x.serverTimeout
	}
	return p.timeout
}

// route runs the request's scripts and chooses its pool and server, with
// the load-balancing scripts. It returns nil when the client has been
// answered instead (by a script, or 503 when no server is up).
func (x *exchange) route() (*poolRuntime, *member) {
	if !x.runRequestScripts() {
		return nil, nil
	}
	pool := x.pool
	if pool == nil {
		pool = x.vs.pool
	}
	var m *member
	if pool != nil {
		m = x.pickServer(pool)
	}
	if m == nil {
		if x.lbFailed() {
			keep := x.bodyKind == bodyNone || x.reqBody != nil
			x.respond(503, "no server available\n", !keep)
		}
		return nil, nil
	}
	if !x.lbDone() {
		return nil, nil
	}
	return pool, m
}

// pickServer chooses the server: the one a script selected, else the
// pool's balancer.
func (x *exchange) pickServer(p *poolRuntime) *member {
	if x.serverIP != "" {
		if m := p.findServer(x.serverIP, x.serverPort); m != nil && m.up() {
			x.server = m
		}
		return x.server
	}
	var key []byte
	switch p.hashKey {
	case "":
	case spec.HashCustomString:
		key = x.chash
	case spec.HashURI:
		key = x.req.Target
	default:
		key = []byte(x.client.ip)
	}
	x.server = p.pick(key)
	return x.server
}

// upstreamFailed answers the client when the server could not be reached
// or gave no valid response: HTTP_RESP_FAILED may answer, else 504 on a
// timeout and 502 otherwise. It reports whether the client connection may
// be kept.
func (x *exchange) upstreamFailed(err error, keep bool) bool {
	var be *clientBodyError
	if errors.As(err, &be) {
		// The client did not send its body: nothing to answer.
		x.done()
		return false
	}
	status := 502
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		status = 504
	}
	keep = keep && (x.bodyKind == bodyNone || x.reqBody != nil)
	if x.txn != nil {
		x.txn.InternalStatus = status
		x.txn.Resp = nil
		if !x.scripted(spec.EvtHTTPRespFailed) {
			return keep && x.localKeep
		}
	}
	x.respond(status, httpStatusBody(status), !keep)
	return keep
}

func httpStatusBody(status int) string {
	switch status {
	case 504:
		return "the server did not answer in time\n"
	default:
		return "the server could not be reached or gave no valid response\n"
	}
}
