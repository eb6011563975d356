// Package actions holds the AlertConfig kind: which events raise an alert,
// when, and the ActionGroup that acts on it, checked when applied (event ids
// against the catalogue, CEL conditions and group keys type-checked with
// their position, the summary template run on sample data).
//
// It is to hold the rest of the rules engine too — the ActionGroup and Alert
// model, the stages that turn events into alerts, and the action pipeline
// (ControlScript, webhook, syslog, email, autoscale) with retries and dead
// letters — which are not built yet: an AlertConfig is stored, not acted on.
package actions
