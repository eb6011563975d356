// Package dataplane is vigil's reverse proxy. A Proxy follows the
// VirtualService, Pool, HealthMonitor, DataScriptSet, StringGroup, IPGroup
// and Secret objects and serves each enabled virtual service on its own
// listener, from an immutable snapshot of the config that a change
// replaces for new requests only.
//
// Plain HTTP/1.x is served by an owned path (conn.go): the request head is
// read into the connection's buffer and parsed in place (package httpmsg),
// DataScripts run on it (package datascript), a server is chosen by the
// pool's balancer among those its health monitors (package health) pass,
// the head is written to a kept-alive server connection and the response
// is relayed as it arrives. TLS connections are split by ALPN: HTTP/2 goes
// to net/http (tls.go), HTTP/1.1 to the owned path. Both reach servers over
// HTTP/1.1.
package dataplane
