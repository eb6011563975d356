package datascript

import (
	"strings"
	"testing"

	"github.com/vigilhq/vigil/dataplane/spec"
)

// names are every name the Lua environment must have.
var names = []string{
	"avi.vs.name", "avi.vs.client_ip", "avi.vs.client_port", "avi.vs.ip", "avi.vs.port", "avi.vs.log",
	"avi.vs.reqvar", "avi.vs.table_insert", "avi.vs.table_lookup", "avi.vs.table_refresh",
	"avi.vs.table_remove", "avi.vs.rate_limit", "avi.vs.ratelimit.exceed", "avi.vs.get_open_conns",

	"avi.http.get_header", "avi.http.add_header", "avi.http.replace_header", "avi.http.remove_header",
	"avi.http.get_cookie", "avi.http.get_cookie_names", "avi.http.cookie_exists", "avi.http.add_cookie",
	"avi.http.replace_cookie", "avi.http.remove_cookie", "avi.http.get_path", "avi.http.set_path",
	"avi.http.get_path_tokens", "avi.http.get_host_tokens", "avi.http.get_uri", "avi.http.set_uri",
	"avi.http.get_query", "avi.http.set_query", "avi.http.hostname", "avi.http.method",
	"avi.http.protocol", "avi.http.scheme", "avi.http.secure", "avi.http.status",
	"avi.http.internal_status", "avi.http.redirect", "avi.http.response", "avi.http.close_conn",
	"avi.http.get_userid", "avi.http.set_userid", "avi.http.get_reqvar", "avi.http.set_reqvar",
	"avi.http.get_request_id", "avi.http.get_req_body", "avi.http.set_response_body_buffer_size",
	"avi.http.set_request_body_buffer_size", "avi.http.get_response_body", "avi.http.set_server_timeout",
	"avi.http.uri", "avi.http.send",

	"avi.pool.select", "avi.pool.get_servers", "avi.pool.get_server_status", "avi.pool.server_ip",
	"avi.pool.chash",

	"avi.stringgroup.equals", "avi.stringgroup.contains", "avi.stringgroup.beginswith",
	"avi.stringgroup.endswith", "avi.stringgroup.equals_CASE", "avi.stringgroup.contains_CASE",
	"avi.stringgroup.beginswith_CASE", "avi.stringgroup.endswith_CASE", "avi.ipgroup.contains",

	"avi.utils.base64_encode", "avi.utils.base64_decode", "avi.utils.sha1_hash", "avi.utils.md5_hash",
	"avi.utils.uri_decode", "avi.utils.rand_bytes", "avi.crypto.encrypt", "avi.crypto.decrypt",
	"avi.ssl.protocol", "avi.ssl.cipher", "avi.ssl.server_name", "avi.ssl.client_cert",

	"string.beginswith", "string.endswith", "string.contains", "vigil.event",

	"avi.HTTP_GET", "avi.HTTP_POST", "avi.HTTP_PUT", "avi.HTTP_HEAD", "avi.HTTP_DELETE", "avi.HTTP_OPTIONS",
	"avi.HTTP_MKCOL", "avi.HTTP_COPY", "avi.HTTP_MOVE", "avi.HTTP_PROPFIND", "avi.HTTP_PROPPATCH",
	"avi.HTTP_PATCH", "avi.HTTP_LOCK", "avi.HTTP_UNLOCK", "avi.HTTP_TRACE",
	"avi.HTTP_OK", "avi.HTTP_CREATED", "avi.HTTP_MOVED_PERMANENTLY", "avi.HTTP_MOVED_TEMPORARILY",
	"avi.HTTP_NOT_MODIFIED", "avi.HTTP_TEMPORARY_REDIRECT", "avi.HTTP_BAD_REQUEST", "avi.HTTP_UNAUTHORIZED",
	"avi.HTTP_FORBIDDEN", "avi.HTTP_NOT_FOUND", "avi.HTTP_NOT_ALLOWED", "avi.HTTP_INTERNAL_SERVER_ERROR",
	"avi.HTTP_METHOD_NOT_IMPLEMENTED", "avi.HTTP_SERVICE_UNAVAILABLE", "avi.HTTP_GATEWAY_TIMEOUT",
	"avi.CIPHER_AES", "avi.CIPHER_3DES", "avi.QUERY_STRING", "avi.QUERY_TABLE", "avi.HTTP_REQUEST",
	"avi.HTTP_RESPONSE", "avi.CLIENT_CERT", "avi.CLIENT_CERT_FINGERPRINT", "avi.CLIENT_CERT_SUBJECT",
	"avi.CLIENT_CERT_ISSUER", "avi.CLIENT_CERT_SERIAL", "avi.RL_CUSTOM_STRING", "avi.RL_ACTION_CLOSE_CONN",
	"avi.RL_ACTION_LOCAL_RSP", "avi.RL_ACTION_REDIRECT", "avi.RL_ACTION_NONE",
}

func TestEveryNameExists(t *testing.T) {
	var b strings.Builder
	b.WriteString("local missing = {}\n")
	for _, n := range names {
		b.WriteString("if " + n + " == nil then missing[#missing+1] = \"" + n + "\" end\n")
	}
	b.WriteString(`if #missing > 0 then error("missing: " .. table.concat(missing, ", ")) end`)
	run(t, spec.EvtHTTPReq, b.String(), newTxn("/x"))
}
