// Package actions is vigil's rules engine and alert actions: the kinds that
// describe them, the engine that turns events into alerts, and the pipeline
// that delivers what the alerts cause. User documentation: docs/alerts.md.
//
// The kinds, checked when applied (event ids against the catalogue, CEL
// conditions and group keys type-checked with their position, templates run
// on a sample alert, addresses and secret references parsed): AlertConfig
// (which events raise an alert, when, and the ActionGroup that acts on it),
// ActionGroup (what happens then: a ControlScript, webhooks, Slack, syslog,
// email, a chained event, the autoscale manager; retries) and Silence
// (maintenance windows that hold actions back).
//
// The engine's pure core: Rule (a compiled AlertConfig: which events raise
// or resolve its alert, and for which group key) and Engine, which turns
// events into alerts and decisions — realtime and rolling windows on the
// events' own time, a bound on lateness, repeated deliveries dropped,
// throttles counted, Event-Driven Ansible's once_within, once_after and
// accumulate_within, silences, resolve, dismiss and expiry — with its state
// in a StateStore (in memory, or KVStore: the JetStream KV bucket
// vigil_alert_state, whose writes carry the revision they read, so engines
// sharing the events behave as one) and its time from an injected clock.
//
// The pipeline: PlanActions turns a decision into ActionRequests, each with
// an idempotency key (ActionKey) that is the same on every retry and
// replay, and when a crash makes the engine decide the same event again.
// The requests are saved in the group's state (its outbox: one conditional
// write holds both, and CachedStore spares the read before it) before the
// event is acknowledged, then queued on the work-queue stream VIGIL_ACTIONS
// (a ControlScript action straight on the runner's queue when the process
// runs scripts); Deliverer performs them (Standard Webhooks signatures, RFC 5424 syslog
// over UDP, TCP or TLS, SMTP with STARTTLS, publish_event, ControlScript runs
// whose execution id derives from the key), retrying with capped exponential
// backoff and equal jitter (Backoff), and moves what cannot be delivered to
// the dead-letter stream VIGIL_DEADLETTERS, from which it can be replayed.
//
// Service wires it all into `vigil serve`: it follows the three kinds in the
// config bucket, consumes the events stream through the durable consumer
// vigil-rules (shared by every instance on one NATS), delivers through
// vigil-actions, and answers the API's alert, test and dead-letter routes.
// `vigil serve --no-rules` leaves it out.
package actions
