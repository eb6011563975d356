// Package webhook implements the WebhookReceiver kind: HTTP endpoints under
// /hooks/<name> that turn deliveries from GitHub, Alertmanager, CloudEvents
// producers, Standard Webhooks senders and plain JSON clients into events on
// the bus.
//
// A request is answered 202 only after JetStream has acknowledged every
// event it carries, so a client that saw 202 never loses an event, even if
// vigil is killed a moment later; when the bus cannot take the events the
// answer is 503 with Retry-After and the client retries. Deliveries are
// de-duplicated by their delivery id (X-GitHub-Delivery, webhook-id, a
// CloudEvent's source and id, a hash of an Alertmanager alert's
// fingerprint, status, startsAt and endsAt, or a configured header) for
// dedup_window, with keys that expire in the KV bucket vigil_webhook_dedup;
// a repeated delivery is answered 200 and publishes nothing. The event's
// CloudEvents id is derived from the receiver and the delivery id, so that
// a repeat which races the dedup record is also dropped by JetStream's own
// duplicate window.
//
// Each receiver states its authentication: none (explicitly), a token
// header, basic auth, or an HMAC signature (generic, or the presets github,
// stripe, slack and standard-webhooks); secrets come from Secret objects and
// every comparison runs in constant time. An optional allow-list limits
// client addresses, a token bucket limits the request rate (429 with
// Retry-After) and max_body bounds the body (413).
//
// Every event carries the receiver name and the delivery id as the
// CloudEvents extensions "receiver" and "deliveryid"; for the formats that
// build events (all but cloudevents) the payload is kept in event_details
// under "webhook_received_details", as {"receiver", "delivery_id",
// "format", "payload"}.
package webhook
