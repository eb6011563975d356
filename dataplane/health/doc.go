// Package health runs the active health monitors of the data plane's
// pools and publishes Avi's health events: SERVER_DOWN and SERVER_UP,
// POOL_DOWN and POOL_UP, VS_DOWN and VS_UP.
//
// A [Checker] probes every enabled server of every pool once per monitor
// and interval. A tcp monitor passes when a connection opens; an http
// monitor sends one HTTP/1.1 request on a fresh connection (Connection:
// close, User-Agent vigil-health/1) and passes when the status is one of
// the expected codes and, when body_contains is set, the first
// [spec.MaxMonitorBody] bytes of the body hold it.
//
// # States
//
// Each monitor has its own state per server, as in Avi: it goes down after
// failed_checks failures in a row and up after successful_checks passes in
// a row. A server is up when every one of its monitors is up; it goes down
// with the first monitor that goes down (SERVER_DOWN carries that check's
// failure code) and comes back when the last one comes up (SERVER_UP).
//
//   - A new server, and a server that is enabled again, starts up and
//     stays up until a monitor fails failed_checks times in a row: the
//     proxy sends it traffic at once, and the start publishes no event. A
//     server that is down from the start gets its SERVER_DOWN after
//     failed_checks checks.
//   - A pool without monitors has its servers always up.
//   - A disabled server is not checked, is not up ([ServerState.Up] is
//     false) and counts in neither side of percent_servers_up, which is the
//     share of the pool's enabled servers that are up, computed after the
//     change the event reports.
//   - A pool is down when none of its enabled servers is up. POOL_DOWN is
//     published when a check takes its last server down, POOL_UP when a
//     check brings a server of a down pool up; with each, VS_DOWN or VS_UP
//     for every virtual service whose default pool it is.
//
// # Configuration changes
//
// [Checker.Set] publishes no event. A server whose address and monitors
// are unchanged keeps its state, counters and checks. A monitor whose
// settings change is restarted with the server's current state (a down
// server then needs successful_checks passes of it to come up). Servers
// and pools that leave the configuration stop being checked. When a
// change alters a pool's up set directly (a server added, removed,
// enabled, disabled, or its last failing monitor removed), the new state
// takes effect silently: the caller of Set knows the change.
//
// # Events
//
// Events follow Avi's EventLog: obj_type "pool" and the pool's name for
// the server and pool events, details under se_hm_pool_details with the
// field names of Avi's SeHmEventPoolDetails, SeHmEventServerDetails and
// SeHmEventShmDetails; obj_type "virtualservice" for VS_DOWN and VS_UP,
// details under se_hm_vs_details (SeHmEventVsDetails). For example:
//
//	{"se_hm_pool_details": {"pool": "web", "virtual_service": "shop",
//	  "server": {"ip": {"addr": "10.0.0.5", "type": "V4"}, "port": 8080,
//	    "hostname": "10.0.0.5", "failure_code": "CONNECTION_REFUSED",
//	    "shm": [{"health_monitor": "hm-tcp"}]},
//	  "percent_servers_up": 50}}
//
// Events are published in order by one goroutine, each with a bounded
// timeout; a check never waits for the bus. Failures are logged, at most
// one line per ten seconds.
//
// # Reading state
//
// [Checker.ServerState] returns a server's state, which the proxy keeps:
// its Up method is one atomic load, and the pointer stays the same across
// Set calls for as long as the server is in its pool. [Options.OnChange]
// is called after a check changes a pool's up set.
package health
