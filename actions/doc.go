// Package actions will hold the AlertConfig, ActionGroup and Alert model,
// the rules engine that turns events into alerts, and the action pipeline
// (ControlScript, webhook, syslog, email, autoscale) with retries and dead
// letters. It holds no code yet.
package actions
