// Package actions holds the AlertConfig kind (which events raise an alert,
// when, and the ActionGroup that acts on it) and the ActionGroup kind (what
// happens then: a ControlScript, webhooks, Slack, syslog, email, a chained
// event), checked when applied: event ids against the catalogue, CEL
// conditions and group keys type-checked with their position, templates run
// on a sample alert, addresses and secret references parsed.
//
// It is to hold the rest of the rules engine too — the Alert model, the
// stages that turn events into alerts, and the action pipeline with retries
// and dead letters — which are not built yet: both kinds are stored, not
// acted on.
package actions
