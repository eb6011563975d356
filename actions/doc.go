// Package actions holds the AlertConfig kind (which events raise an alert,
// when, and the ActionGroup that acts on it), the ActionGroup kind (what
// happens then: a ControlScript, webhooks, Slack, syslog, email, a chained
// event) and the Silence kind (maintenance windows), checked when applied: event ids against the catalogue, CEL
// conditions and group keys type-checked with their position, templates run
// on a sample alert, addresses and secret references parsed.
//
// The rules engine's pure core is here too: Rule (a compiled AlertConfig:
// which events raise or resolve its alert, and for which group key) and
// Engine, which turns events into alerts and decisions — realtime and
// rolling windows on the events' own time, a bound on lateness, repeated
// deliveries dropped, throttles counted, Event-Driven Ansible's
// once_within, once_after and accumulate_within, silences, resolve and
// expiry — with its state in a StateStore (in memory, or KVStore: a
// JetStream KV bucket whose writes carry the revision they read, so engines
// sharing the events behave as one) and its time from an injected clock.
// Not built yet: the action pipeline with retries and dead letters, and the
// wiring into `vigil serve`; the kinds are stored, not acted on.
package actions
