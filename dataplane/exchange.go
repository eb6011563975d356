package dataplane

import (
	"errors"
	"net"
	"os"
	"time"

	"github.com/vigilhq/vigil/dataplane/spec"
)

// exchange is one request and its response as they pass through the
// proxy: what the DataScripts decided and what the proxy chose.
type exchange struct {
	cc       *clientConn
	vs       *vsRuntime
	bodyKind bodyKind
	bodyLen  int64
	upgrade  bool
	start    time.Time

	// Set by DataScripts.
	pool          *poolRuntime
	serverIP      string
	serverPort    int
	chash         []byte
	serverTimeout time.Duration
	// localKeep is whether a response a script gave lets the client
	// connection be kept.
	localKeep bool

	server *member
}

// runRequestScripts runs the HTTP_REQ scripts; false means a script
// answered the request itself.
func (x *exchange) runRequestScripts() bool { return true }

// lbFailed runs the HTTP_LB_FAILED scripts when no server could be
// chosen; false means a script answered.
func (x *exchange) lbFailed() bool { return true }

// lbDone runs the HTTP_LB_DONE scripts once a server is chosen; false
// means a script answered.
func (x *exchange) lbDone() bool { return true }

// runResponseScripts runs the HTTP_RESP scripts on the server's response
// head; false means a script answered instead.
func (x *exchange) runResponseScripts() bool { return true }

// done ends the exchange: counters and the access log.
func (x *exchange) done() {}

// pickServer chooses the server: the one a script selected, else the
// pool's balancer.
func (x *exchange) pickServer(p *poolRuntime) *member {
	if x.serverIP != "" {
		if b := p.find(x.serverIP, x.serverPort); b != nil && b.up() {
			x.server = b
		}
		return x.server
	}
	var key []byte
	switch p.hashKey {
	case "":
	case spec.HashCustomString:
		key = x.chash
	case spec.HashURI:
		key = x.cc.req.Target
	default:
		key = []byte(x.cc.clientIP)
	}
	x.server = p.pick(key)
	return x.server
}

// upstreamFailed answers the client when the server could not be reached
// or gave no valid response: 504 on a timeout, 502 otherwise. It reports
// whether the client connection may be kept.
func (x *exchange) upstreamFailed(err error, keep bool) bool {
	var be *clientBodyError
	if errors.As(err, &be) {
		// The client did not send its body: nothing to answer.
		return false
	}
	status := 502
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		status = 504
	}
	x.cc.local(status, httpStatusBody(status), !keep)
	return keep && x.bodyKind == bodyNone
}

func httpStatusBody(status int) string {
	switch status {
	case 504:
		return "the server did not answer in time\n"
	default:
		return "the server could not be reached or gave no valid response\n"
	}
}
