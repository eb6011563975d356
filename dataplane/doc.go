// Package dataplane will hold the reverse proxy: virtual services, pools,
// load balancing, health monitors, TLS and the Lua DataScript engine. It
// holds no code yet.
package dataplane
