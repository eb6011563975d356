// Package spec holds the specs of the data plane's kinds (VirtualService,
// Pool, HealthMonitor, DataScriptSet, StringGroup, IPGroup) with their
// defaults and the checks that need nothing but the spec itself. Field
// names follow Avi's where Avi has the field.
package spec

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/config"
)

// The kinds.
const (
	KindVirtualService = "VirtualService"
	KindPool           = "Pool"
	KindHealthMonitor  = "HealthMonitor"
	KindDataScriptSet  = "DataScriptSet"
	KindStringGroup    = "StringGroup"
	KindIPGroup        = "IPGroup"
)

// VirtualService is a listener and what serves it.
type VirtualService struct {
	// Listen is host:port, e.g. "0.0.0.0:8080" or "127.0.0.1:0".
	Listen string `json:"listen"`
	// TLS, when set, serves HTTPS (and HTTP/2 unless HTTP2 is false).
	TLS *TLS `json:"tls,omitempty"`
	// Pool is the default pool.
	Pool string `json:"pool,omitempty"`
	// DataScripts are DataScriptSet names, run in this order (Avi's
	// vs_datascripts by index).
	DataScripts []string `json:"datascripts,omitempty"`
	// Enabled defaults to true.
	Enabled *bool `json:"enabled,omitempty"`
	// AccessLog defaults to true: one JSON line per request on stderr,
	// with the DataScript log lines.
	AccessLog *bool `json:"access_log,omitempty"`
	// MaxConcurrentScripts bounds DataScripts running at once on this
	// virtual service; default 256.
	MaxConcurrentScripts int      `json:"max_concurrent_scripts,omitempty"`
	Timeouts             Timeouts `json:"timeouts,omitzero"`
	// MaxRequestHeader is the largest request head; default 32Ki.
	MaxRequestHeader config.Quantity `json:"max_request_header,omitempty"`
	// MaxRequestBody is the largest request body; 0 is no limit, the
	// default. A larger body gets 413.
	MaxRequestBody config.Quantity `json:"max_request_body,omitempty"`
	// RequestBodyBuffer is how much of a request body is held for
	// HTTP_REQ_DATA scripts (Avi's request_body_buffering); default 32Ki.
	RequestBodyBuffer config.Quantity `json:"request_body_buffer,omitempty"`
}

// TLS is a virtual service's certificate.
type TLS struct {
	// Secret names a Secret with the PEM keys "cert" and "key".
	Secret string `json:"secret"`
	// HTTP2 defaults to true (offered through ALPN).
	HTTP2 *bool `json:"http2,omitempty"`
}

// Timeouts of a virtual service's client side.
type Timeouts struct {
	// ClientHeader bounds reading a request head; default 10s.
	ClientHeader config.Duration `json:"client_header,omitempty"`
	// ClientIdle bounds a keep-alive connection's wait for its next
	// request; default 60s.
	ClientIdle config.Duration `json:"client_idle,omitempty"`
	// ClientBody bounds a gap while reading a request body; default 60s.
	ClientBody config.Duration `json:"client_body,omitempty"`
	// ClientWrite bounds a gap while writing to the client; default 60s.
	ClientWrite config.Duration `json:"client_write,omitempty"`
}

// Defaults of a virtual service.
const (
	DefaultMaxConcurrentScripts = 256
	DefaultMaxRequestHeader     = 32 << 10
	DefaultRequestBodyBuffer    = 32 << 10
	DefaultClientHeaderTimeout  = 10 * time.Second
	DefaultClientIdleTimeout    = 60 * time.Second
	DefaultClientBodyTimeout    = 60 * time.Second
	DefaultClientWriteTimeout   = 60 * time.Second
)

// IsEnabled reports whether the virtual service serves.
func (v *VirtualService) IsEnabled() bool { return v.Enabled == nil || *v.Enabled }

// LogsAccess reports whether requests are logged.
func (v *VirtualService) LogsAccess() bool { return v.AccessLog == nil || *v.AccessLog }

// Port is the listen port as a string, as Avi's avi.vs.port() gives it.
func (v *VirtualService) Port() string {
	_, p, _ := net.SplitHostPort(v.Listen)
	return p
}

// HTTP2Enabled reports whether HTTP/2 is offered over TLS.
func (t *TLS) HTTP2Enabled() bool { return t.HTTP2 == nil || *t.HTTP2 }

// Pool is a set of servers and how to choose among them.
type Pool struct {
	Servers []Server `json:"servers,omitempty"`
	// DefaultServerPort is the port of a server that gives none; default 80.
	DefaultServerPort int `json:"default_server_port,omitempty"`
	// LBAlgorithm is round_robin (default), least_connections or
	// consistent_hash; Avi's LB_ALGORITHM_* names are accepted too.
	LBAlgorithm string `json:"lb_algorithm,omitempty"`
	// LBAlgorithmHash, for consistent_hash: source_ip (default), uri, or
	// custom_string (the key a DataScript gives with avi.pool.chash);
	// Avi's LB_ALGORITHM_CONSISTENT_HASH_* names are accepted too.
	LBAlgorithmHash string `json:"lb_algorithm_hash,omitempty"`
	// HealthMonitors are HealthMonitor names; a server is up when every
	// one passes. None: servers are always up.
	HealthMonitors []string `json:"health_monitors,omitempty"`
	// ConnectTimeout bounds connecting to a server; default 5s.
	ConnectTimeout config.Duration `json:"connect_timeout,omitempty"`
	// ServerTimeout bounds a gap while waiting for or reading a server's
	// response (Avi's server idle timeout); default 60s; a DataScript can
	// change it per request with avi.http.set_server_timeout.
	ServerTimeout config.Duration `json:"server_timeout,omitempty"`
	// MaxIdlePerServer is the keep-alive connections kept per server;
	// default 128.
	MaxIdlePerServer int `json:"max_idle_per_server,omitempty"`
	// MaxConnsPerServer bounds connections to a server; 0 is no limit.
	MaxConnsPerServer int `json:"max_conns_per_server,omitempty"`
	// MetricsInterval is how often POOL_METRICS is published; default
	// 60s, at least 100ms.
	MetricsInterval config.Duration `json:"metrics_interval,omitempty"`
	// AutoscalePolicy names the AutoscalePolicy that grows and shrinks the
	// pool (Avi's autoscale_policy_ref); the data plane ignores it.
	AutoscalePolicy string `json:"autoscale_policy,omitempty"`
}

// Server is one backend of a pool.
type Server struct {
	IP       string `json:"ip"`
	Port     int    `json:"port,omitempty"`
	Hostname string `json:"hostname,omitempty"`
	// Enabled defaults to true; a disabled server gets no new requests.
	Enabled *bool `json:"enabled,omitempty"`
	// Ratio weights the server in round robin and least connections;
	// 1 to 20 as in Avi, default 1.
	Ratio int `json:"ratio,omitempty"`
}

// IsEnabled reports whether the server takes requests.
func (s *Server) IsEnabled() bool { return s.Enabled == nil || *s.Enabled }

// Defaults of a pool.
const (
	DefaultServerPort       = 80
	DefaultConnectTimeout   = 5 * time.Second
	DefaultServerTimeout    = 60 * time.Second
	DefaultMaxIdlePerServer = 128
	DefaultMetricsInterval  = 60 * time.Second
	MaxRatio                = 20
	MaxServers              = 1000
)

// Load-balancing algorithms and consistent-hash keys.
const (
	LBRoundRobin       = "round_robin"
	LBLeastConnections = "least_connections"
	LBConsistentHash   = "consistent_hash"
	HashSourceIP       = "source_ip"
	HashURI            = "uri"
	HashCustomString   = "custom_string"
)

var lbNames = map[string]string{
	LBRoundRobin: LBRoundRobin, "LB_ALGORITHM_ROUND_ROBIN": LBRoundRobin,
	LBLeastConnections: LBLeastConnections, "LB_ALGORITHM_LEAST_CONNECTIONS": LBLeastConnections,
	LBConsistentHash: LBConsistentHash, "LB_ALGORITHM_CONSISTENT_HASH": LBConsistentHash,
}

var hashNames = map[string]string{
	HashSourceIP: HashSourceIP, "LB_ALGORITHM_CONSISTENT_HASH_SOURCE_IP_ADDRESS": HashSourceIP,
	HashURI: HashURI, "LB_ALGORITHM_CONSISTENT_HASH_URI": HashURI,
	HashCustomString: HashCustomString, "LB_ALGORITHM_CONSISTENT_HASH_CUSTOM_STRING": HashCustomString,
}

// Algorithm returns the pool's algorithm in vigil's short form.
func (p *Pool) Algorithm() string {
	if a, ok := lbNames[p.LBAlgorithm]; ok {
		return a
	}
	return LBRoundRobin
}

// Hash returns the consistent-hash key in vigil's short form.
func (p *Pool) Hash() string {
	if h, ok := hashNames[p.LBAlgorithmHash]; ok {
		return h
	}
	return HashSourceIP
}

// ServerPort returns s's port, or the pool's default.
func (p *Pool) ServerPort(s *Server) int {
	if s.Port != 0 {
		return s.Port
	}
	if p.DefaultServerPort != 0 {
		return p.DefaultServerPort
	}
	return DefaultServerPort
}

// HealthMonitor checks a pool's servers.
type HealthMonitor struct {
	// Type is http or tcp; Avi's HEALTH_MONITOR_HTTP and _TCP are
	// accepted too.
	Type string `json:"type"`
	// Interval between checks (Avi's send_interval); default 10s.
	Interval config.Duration `json:"interval,omitempty"`
	// Timeout of one check (Avi's receive_timeout); default 4s; must be
	// below the interval.
	Timeout config.Duration `json:"timeout,omitempty"`
	// SuccessfulChecks in a row mark a down server up; default 2.
	SuccessfulChecks int `json:"successful_checks,omitempty"`
	// FailedChecks in a row mark an up server down; default 2.
	FailedChecks int `json:"failed_checks,omitempty"`
	// Port, when set, is checked instead of the server's.
	Port int        `json:"monitor_port,omitempty"`
	HTTP *HTTPCheck `json:"http,omitempty"`
}

// HTTPCheck is what an http monitor sends and expects.
type HTTPCheck struct {
	// Method defaults to GET.
	Method string `json:"method,omitempty"`
	// Path defaults to "/".
	Path string `json:"path,omitempty"`
	// Host is the Host header; default the server's hostname or IP.
	Host string `json:"host,omitempty"`
	// ExpectedCodes are codes ("200") or classes ("2xx"); Avi's
	// HTTP_2XX forms are accepted. Default 2xx and 3xx.
	ExpectedCodes []string `json:"expected_codes,omitempty"`
	// BodyContains, when set, must appear in the first 8 KiB of the body
	// (Avi's http_response).
	BodyContains string `json:"body_contains,omitempty"`
}

// Defaults of a health monitor.
const (
	MonitorHTTP             = "http"
	MonitorTCP              = "tcp"
	DefaultMonitorInterval  = 10 * time.Second
	DefaultMonitorTimeout   = 4 * time.Second
	DefaultSuccessfulChecks = 2
	DefaultFailedChecks     = 2
	MaxMonitorBody          = 8 << 10
)

// Kind returns the monitor's type in vigil's short form.
func (h *HealthMonitor) Kind() string {
	switch h.Type {
	case MonitorHTTP, "HEALTH_MONITOR_HTTP":
		return MonitorHTTP
	default:
		return MonitorTCP
	}
}

// Event names of DataScripts.
const (
	EvtHTTPReq        = "VS_DATASCRIPT_EVT_HTTP_REQ"
	EvtHTTPReqData    = "VS_DATASCRIPT_EVT_HTTP_REQ_DATA"
	EvtHTTPLBDone     = "VS_DATASCRIPT_EVT_HTTP_LB_DONE"
	EvtHTTPLBFailed   = "VS_DATASCRIPT_EVT_HTTP_LB_FAILED"
	EvtHTTPResp       = "VS_DATASCRIPT_EVT_HTTP_RESP"
	EvtHTTPRespData   = "VS_DATASCRIPT_EVT_HTTP_RESP_DATA"
	EvtHTTPRespFailed = "VS_DATASCRIPT_EVT_HTTP_RESP_FAILED"
)

// Events are the DataScript events vigil runs, in the order of a request.
var Events = []string{EvtHTTPReq, EvtHTTPReqData, EvtHTTPLBDone, EvtHTTPLBFailed, EvtHTTPResp, EvtHTTPRespData, EvtHTTPRespFailed}

// DataScriptSet is Lua scripts per event and the objects they may name.
type DataScriptSet struct {
	// DataScript is Avi's datascript[]: one Lua chunk per event.
	DataScript []DataScript `json:"datascript"`
	// PoolRefs, StringGroupRefs and IPGroupRefs are the only pools and
	// groups the scripts may name.
	PoolRefs        []string      `json:"pool_refs,omitempty"`
	StringGroupRefs []string      `json:"string_group_refs,omitempty"`
	IPGroupRefs     []string      `json:"ip_group_refs,omitempty"`
	RateLimiters    []RateLimiter `json:"rate_limiters,omitempty"`
}

// DataScript is one Lua chunk and the event it runs on.
type DataScript struct {
	Evt    string `json:"evt"`
	Script string `json:"script"`
}

// RateLimiter is a named limit for avi.vs.ratelimit.exceed: Count
// requests per Period, with BurstSz more allowed at once (Avi's
// defaults: count 1e9, period 1s, burst 0).
type RateLimiter struct {
	Name    string `json:"name"`
	Count   int64  `json:"count,omitempty"`
	Period  int64  `json:"period,omitempty"` // seconds
	BurstSz int64  `json:"burst_sz,omitempty"`
}

// MaxScriptSize bounds one Lua chunk.
const MaxScriptSize = 256 << 10

// StringGroup is a list of strings, or of keys with values (Avi's
// SG_TYPE_KEYVAL), for avi.stringgroup.*.
type StringGroup struct {
	KV []KV `json:"kv"`
}

// KV is one entry of a StringGroup; Value may be empty.
type KV struct {
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
}

// IPGroup is addresses, prefixes and ranges for avi.ipgroup.contains.
type IPGroup struct {
	Addrs    []string  `json:"addrs,omitempty"`
	Prefixes []string  `json:"prefixes,omitempty"`
	Ranges   []IPRange `json:"ranges,omitempty"`
}

// IPRange is an inclusive range of addresses.
type IPRange struct {
	Begin string `json:"begin"`
	End   string `json:"end"`
}

// ParseVirtualService decodes and checks a VirtualService spec (its
// references are checked when the data plane loads it).
func ParseVirtualService(raw json.RawMessage) (*VirtualService, error) {
	var v VirtualService
	if err := config.DecodeSpec(raw, &v); err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(v.Listen)
	if err != nil {
		return nil, config.Errorf("spec.listen", "must be host:port, e.g. 0.0.0.0:8080: %v", err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return nil, config.Errorf("spec.listen", "bad port %q", port)
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil && host != "localhost" {
			return nil, config.Errorf("spec.listen", "host must be an IP address, got %q", host)
		}
	}
	if v.TLS != nil && v.TLS.Secret == "" {
		return nil, config.Errorf("spec.tls.secret", "is required: a Secret with the PEM keys cert and key")
	}
	for i, d := range v.DataScripts {
		if d == "" {
			return nil, config.Errorf(fmt.Sprintf("spec.datascripts[%d]", i), "is empty")
		}
	}
	if v.MaxConcurrentScripts < 0 {
		return nil, config.Errorf("spec.max_concurrent_scripts", "must not be negative")
	}
	if v.MaxConcurrentScripts == 0 {
		v.MaxConcurrentScripts = DefaultMaxConcurrentScripts
	}
	if v.MaxRequestHeader < 0 || v.MaxRequestHeader > 1<<20 {
		return nil, config.Errorf("spec.max_request_header", "must be at most 1Mi")
	}
	if v.MaxRequestHeader == 0 {
		v.MaxRequestHeader = DefaultMaxRequestHeader
	}
	if v.MaxRequestBody < 0 {
		return nil, config.Errorf("spec.max_request_body", "must not be negative")
	}
	if v.RequestBodyBuffer < 0 || v.RequestBodyBuffer > 32<<20 {
		return nil, config.Errorf("spec.request_body_buffer", "must be at most 32Mi")
	}
	if v.RequestBodyBuffer == 0 {
		v.RequestBodyBuffer = DefaultRequestBodyBuffer
	}
	def(&v.Timeouts.ClientHeader, DefaultClientHeaderTimeout)
	def(&v.Timeouts.ClientIdle, DefaultClientIdleTimeout)
	def(&v.Timeouts.ClientBody, DefaultClientBodyTimeout)
	def(&v.Timeouts.ClientWrite, DefaultClientWriteTimeout)
	return &v, nil
}

func def(d *config.Duration, v time.Duration) {
	if *d == 0 {
		*d = config.Duration(v)
	}
}

// ParsePool decodes and checks a Pool spec.
func ParsePool(raw json.RawMessage) (*Pool, error) {
	var p Pool
	if err := config.DecodeSpec(raw, &p); err != nil {
		return nil, err
	}
	if len(p.Servers) > MaxServers {
		return nil, config.Errorf("spec.servers", "has %d servers, over the limit of %d", len(p.Servers), MaxServers)
	}
	if p.LBAlgorithm != "" {
		if _, ok := lbNames[p.LBAlgorithm]; !ok {
			return nil, config.Errorf("spec.lb_algorithm", "must be round_robin, least_connections or consistent_hash, got %q", p.LBAlgorithm)
		}
	}
	if p.LBAlgorithmHash != "" {
		if _, ok := hashNames[p.LBAlgorithmHash]; !ok {
			return nil, config.Errorf("spec.lb_algorithm_hash", "must be source_ip, uri or custom_string, got %q", p.LBAlgorithmHash)
		}
	}
	if p.DefaultServerPort < 0 || p.DefaultServerPort > 65535 {
		return nil, config.Errorf("spec.default_server_port", "must be 1-65535")
	}
	seen := map[string]int{}
	for i := range p.Servers {
		s := &p.Servers[i]
		f := fmt.Sprintf("spec.servers[%d]", i)
		a, err := netip.ParseAddr(s.IP)
		if err != nil {
			return nil, config.Errorf(f+".ip", "must be an IP address, got %q", s.IP)
		}
		s.IP = a.String()
		if s.Port < 0 || s.Port > 65535 {
			return nil, config.Errorf(f+".port", "must be 1-65535, got %d", s.Port)
		}
		if s.Ratio < 0 || s.Ratio > MaxRatio {
			return nil, config.Errorf(f+".ratio", "must be 1-%d, got %d", MaxRatio, s.Ratio)
		}
		if s.Ratio == 0 {
			s.Ratio = 1
		}
		key := net.JoinHostPort(s.IP, strconv.Itoa(p.ServerPort(s)))
		if j, dup := seen[key]; dup {
			return nil, config.Errorf(f, "repeats spec.servers[%d] (%s)", j, key)
		}
		seen[key] = i
	}
	if p.MaxIdlePerServer < 0 || p.MaxConnsPerServer < 0 {
		return nil, config.Errorf("spec.max_idle_per_server", "must not be negative")
	}
	if p.MaxIdlePerServer == 0 {
		p.MaxIdlePerServer = DefaultMaxIdlePerServer
	}
	def(&p.ConnectTimeout, DefaultConnectTimeout)
	def(&p.ServerTimeout, DefaultServerTimeout)
	def(&p.MetricsInterval, DefaultMetricsInterval)
	if p.MetricsInterval.D() < 100*time.Millisecond {
		return nil, config.Errorf("spec.metrics_interval", "must be at least 100ms")
	}
	return &p, nil
}

// ParseHealthMonitor decodes and checks a HealthMonitor spec.
func ParseHealthMonitor(raw json.RawMessage) (*HealthMonitor, error) {
	var h HealthMonitor
	if err := config.DecodeSpec(raw, &h); err != nil {
		return nil, err
	}
	switch h.Type {
	case MonitorHTTP, "HEALTH_MONITOR_HTTP", MonitorTCP, "HEALTH_MONITOR_TCP":
	default:
		return nil, config.Errorf("spec.type", "must be http or tcp, got %q", h.Type)
	}
	def(&h.Interval, DefaultMonitorInterval)
	def(&h.Timeout, DefaultMonitorTimeout)
	if h.Timeout.D() >= h.Interval.D() && h.Interval.D() < DefaultMonitorTimeout {
		// A short interval with the default timeout: the timeout follows.
		h.Timeout = config.Duration(h.Interval.D() * 4 / 5)
	}
	if h.Timeout.D() > h.Interval.D() {
		return nil, config.Errorf("spec.timeout", "must not be longer than spec.interval (%s)", h.Interval.D())
	}
	if h.Interval.D() < 10*time.Millisecond {
		return nil, config.Errorf("spec.interval", "must be at least 10ms")
	}
	if h.SuccessfulChecks < 0 || h.SuccessfulChecks > 50 {
		return nil, config.Errorf("spec.successful_checks", "must be 1-50")
	}
	if h.FailedChecks < 0 || h.FailedChecks > 50 {
		return nil, config.Errorf("spec.failed_checks", "must be 1-50")
	}
	if h.SuccessfulChecks == 0 {
		h.SuccessfulChecks = DefaultSuccessfulChecks
	}
	if h.FailedChecks == 0 {
		h.FailedChecks = DefaultFailedChecks
	}
	if h.Port < 0 || h.Port > 65535 {
		return nil, config.Errorf("spec.monitor_port", "must be 1-65535")
	}
	if h.Kind() == MonitorTCP {
		if h.HTTP != nil {
			return nil, config.Errorf("spec.http", "is for http monitors only")
		}
		return &h, nil
	}
	if h.HTTP == nil {
		h.HTTP = &HTTPCheck{}
	}
	if h.HTTP.Method == "" {
		h.HTTP.Method = "GET"
	}
	for _, c := range h.HTTP.Method {
		if c < 'A' || c > 'Z' {
			return nil, config.Errorf("spec.http.method", "must be an upper-case method, got %q", h.HTTP.Method)
		}
	}
	if h.HTTP.Path == "" {
		h.HTTP.Path = "/"
	}
	if !strings.HasPrefix(h.HTTP.Path, "/") || strings.ContainsAny(h.HTTP.Path, " \r\n") {
		return nil, config.Errorf("spec.http.path", "must start with / and hold no spaces, got %q", h.HTTP.Path)
	}
	if strings.ContainsAny(h.HTTP.Host, " \r\n") {
		return nil, config.Errorf("spec.http.host", "must hold no spaces")
	}
	if len(h.HTTP.ExpectedCodes) == 0 {
		h.HTTP.ExpectedCodes = []string{"2xx", "3xx"}
	}
	for i, c := range h.HTTP.ExpectedCodes {
		if _, _, err := CodeRange(c); err != nil {
			return nil, config.Errorf(fmt.Sprintf("spec.http.expected_codes[%d]", i), "%v", err)
		}
	}
	if len(h.HTTP.BodyContains) > MaxMonitorBody {
		return nil, config.Errorf("spec.http.body_contains", "must be at most %d bytes", MaxMonitorBody)
	}
	return &h, nil
}

// CodeRange reads an expected code: "200", "2xx" or Avi's "HTTP_2XX"
// and "HTTP_ANY".
func CodeRange(c string) (lo, hi int, err error) {
	s := strings.ToLower(strings.TrimPrefix(strings.ToUpper(c), "HTTP_"))
	if s == "any" {
		return 100, 599, nil
	}
	if len(s) == 3 && s[0] >= '1' && s[0] <= '5' && s[1:] == "xx" {
		lo = int(s[0]-'0') * 100
		return lo, lo + 99, nil
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 100 && n <= 599 {
		return n, n, nil
	}
	return 0, 0, fmt.Errorf("%q is not a code (200), a class (2xx) or any", c)
}

// ParseDataScriptSet decodes a DataScriptSet spec and checks all but the
// Lua (which package datascript compiles).
func ParseDataScriptSet(raw json.RawMessage) (*DataScriptSet, error) {
	var d DataScriptSet
	if err := config.DecodeSpec(raw, &d); err != nil {
		return nil, err
	}
	if len(d.DataScript) == 0 {
		return nil, config.Errorf("spec.datascript", "is required: at least one {evt, script}")
	}
	known := map[string]bool{}
	for _, e := range Events {
		known[e] = true
	}
	seen := map[string]bool{}
	for i, s := range d.DataScript {
		f := fmt.Sprintf("spec.datascript[%d]", i)
		if !known[s.Evt] {
			return nil, config.Errorf(f+".evt", "unknown event %q: one of %s", s.Evt, strings.Join(Events, ", "))
		}
		if seen[s.Evt] {
			return nil, config.Errorf(f+".evt", "%s has a script already in this set", s.Evt)
		}
		seen[s.Evt] = true
		if len(s.Script) > MaxScriptSize {
			return nil, config.Errorf(f+".script", "is %d bytes, over the limit of %d", len(s.Script), MaxScriptSize)
		}
	}
	names := map[string]bool{}
	for i := range d.RateLimiters {
		r := &d.RateLimiters[i]
		f := fmt.Sprintf("spec.rate_limiters[%d]", i)
		if r.Name == "" {
			return nil, config.Errorf(f+".name", "is required")
		}
		if names[r.Name] {
			return nil, config.Errorf(f+".name", "repeats %q", r.Name)
		}
		names[r.Name] = true
		if r.Count < 0 || r.Period < 0 || r.BurstSz < 0 {
			return nil, config.Errorf(f, "count, period and burst_sz must not be negative")
		}
		*r = r.WithDefaults()
	}
	return &d, nil
}

// WithDefaults returns the limiter with Avi's defaults for what it leaves
// out: count 1e9, period 1 s.
func (r RateLimiter) WithDefaults() RateLimiter {
	if r.Count == 0 {
		r.Count = 1_000_000_000
	}
	if r.Period == 0 {
		r.Period = 1
	}
	return r
}

// ParseStringGroup decodes and checks a StringGroup spec.
func ParseStringGroup(raw json.RawMessage) (*StringGroup, error) {
	var g StringGroup
	if err := config.DecodeSpec(raw, &g); err != nil {
		return nil, err
	}
	if len(g.KV) > 100_000 {
		return nil, config.Errorf("spec.kv", "has %d entries, over the limit of 100000", len(g.KV))
	}
	return &g, nil
}

// ParseIPGroup decodes and checks an IPGroup spec.
func ParseIPGroup(raw json.RawMessage) (*IPGroup, error) {
	var g IPGroup
	if err := config.DecodeSpec(raw, &g); err != nil {
		return nil, err
	}
	for i, a := range g.Addrs {
		if _, err := netip.ParseAddr(a); err != nil {
			return nil, config.Errorf(fmt.Sprintf("spec.addrs[%d]", i), "must be an IP address, got %q", a)
		}
	}
	for i, p := range g.Prefixes {
		if _, err := netip.ParsePrefix(p); err != nil {
			return nil, config.Errorf(fmt.Sprintf("spec.prefixes[%d]", i), "must be a CIDR prefix such as 10.0.0.0/8, got %q", p)
		}
	}
	for i, r := range g.Ranges {
		b, err1 := netip.ParseAddr(r.Begin)
		e, err2 := netip.ParseAddr(r.End)
		if err1 != nil || err2 != nil || b.Is4() != e.Is4() || e.Less(b) {
			return nil, config.Errorf(fmt.Sprintf("spec.ranges[%d]", i), "must be two addresses of one family, begin <= end")
		}
	}
	return &g, nil
}
