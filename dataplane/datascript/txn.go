package datascript

import (
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/vigilhq/vigil/dataplane/httpmsg"
)

// Txn is one HTTP transaction as the scripts see it. The proxy fills the
// inputs before a Run and reads the outputs after it; one Txn serves every
// event of a transaction, so that reqvars set in HTTP_REQ are seen in
// HTTP_RESP. A Txn is used by one goroutine at a time.
type Txn struct {
	// Req is the request head; scripts edit it in place (headers, path,
	// query). Values they set are fresh slices, never the read buffer.
	Req *httpmsg.Request
	// Resp is the response head, nil before the response arrives.
	Resp *httpmsg.Response

	// ClientIP, ClientPort, VSIP and VSPort are the connection's ends;
	// the ports are strings, as avi.vs.port() gives them.
	ClientIP, ClientPort, VSIP, VSPort string
	// Secure reports a TLS connection; TLS describes it (nil on plain
	// HTTP).
	Secure bool
	TLS    *TLSInfo
	// RequestID is avi.http.get_request_id(); when empty, RequestSeq
	// gives it (in base 36), made only when a script asks.
	RequestID  string
	RequestSeq uint64
	// ReqBody is the buffered request body, for HTTP_REQ_DATA.
	ReqBody []byte
	// RespBody is the buffered response body, for HTTP_RESP_DATA.
	RespBody []byte
	// ServerIP is the chosen server, for avi.pool.server_ip().
	ServerIP string
	// UserIDFromAuth is the basic-auth user, used by get_userid when no
	// script has set one.
	UserIDFromAuth string
	// InternalStatus is the status vigil would answer with in
	// HTTP_RESP_FAILED (e.g. 502 or 504), for avi.http.internal_status().
	InternalStatus int

	// Action is what the proxy must do instead of forwarding, set by
	// avi.http.response, send, redirect and close_conn.
	Action Action
	// Pool, Server and Port are avi.pool.select's choice; Server is empty
	// when only a pool was chosen, Port 0 when no port was given.
	Pool, Server string
	Port         int
	// CHash is the key of avi.pool.chash, for consistent_hash pools with
	// the custom_string hash.
	CHash string
	// ServerTimeout, when not 0, replaces the pool's server timeout for
	// this request (avi.http.set_server_timeout).
	ServerTimeout time.Duration
	// RespBodyBufferSize, when not 0, is how many bytes of the response
	// body to buffer for HTTP_RESP_DATA (set_response_body_buffer_size).
	RespBodyBufferSize int
	// ReqBodyBufferSize, when not 0, is how many bytes of the request
	// body to buffer for HTTP_REQ_DATA (set_request_body_buffer_size).
	ReqBodyBufferSize int
	// UserID is what a script set with avi.http.set_userid.
	UserID string
	// Log holds avi.vs.log lines, each prefixed `[string "<set>"]:<line>: `.
	Log []string

	reqvars map[string]lua.LValue
}

// Reset empties t for reuse by another transaction, keeping its buffers.
// The reqvars of the last transaction are dropped.
func (t *Txn) Reset() {
	hdr := t.Action.Header[:0]
	logs := t.Log[:0]
	clear(t.Log)
	rv := t.reqvars
	clear(rv)
	*t = Txn{}
	t.Action.Header = hdr
	t.Log = logs
	t.reqvars = rv
}

// ActionKind is what the proxy does with a transaction after a script.
type ActionKind uint8

// The actions.
const (
	// ActionNone: carry on as configured.
	ActionNone ActionKind = iota
	// ActionRespond: answer locally with Status, Header and Body.
	ActionRespond
	// ActionClose: close the client connection (with RST if Reset).
	ActionClose
)

// Action is a terminal action of a script: once set, the rest of the chunk
// and later sets do not run for this event.
type Action struct {
	Kind ActionKind
	// Status, Header and Body make the local response. Header values may
	// share memory with other responses: replace them, never write into
	// them.
	Status int
	Header httpmsg.Fields
	Body   []byte
	// Reset asks for a TCP RST instead of a FIN (ActionClose).
	Reset bool
}

// TLSInfo describes the client's TLS connection for avi.ssl.*.
type TLSInfo struct {
	// Protocol is e.g. "TLSv1.3".
	Protocol string
	// Cipher is the OpenSSL name of the cipher suite, e.g.
	// "ECDHE-RSA-AES128-GCM-SHA256"; CipherDetail is OpenSSL's
	// description ("<name> <version> Kx=.. Au=.. Enc=.. Mac=..") given by
	// avi.ssl.cipher(true), built from Cipher when empty.
	Cipher, CipherDetail string
	// ServerName is the SNI.
	ServerName string
	// ClientCertPEM is the client certificate, empty when none was sent;
	// the other ClientCert fields are its subject and issuer in OpenSSL's
	// one-line form (/C=US/O=foo/CN=bar), its serial in upper-case hex,
	// its SHA-1 fingerprint in lower-case hex and its common name (the
	// user id of last resort).
	ClientCertPEM         string
	ClientCertSubject     string
	ClientCertIssuer      string
	ClientCertSerial      string
	ClientCertFingerprint string
	ClientCertCommonName  string
}
