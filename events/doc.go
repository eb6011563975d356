// Package events defines vigil's event record, the catalogue of event ids,
// the NATS subjects events travel on, and the JetStream bus.
//
// # The record
//
// Every event is a CloudEvents 1.0 JSON document in structured mode whose
// data is an Avi-style EventLog record:
//
//	{"specversion": "1.0", "id": "0193…", "source": "/vigil/controller",
//	 "type": "SERVER_DOWN", "subject": "pool/web",
//	 "time": "2025-11-25T17:00:00.123456789Z", "datacontenttype": "application/json",
//	 "data": {"event_id": "SERVER_DOWN", "module": "SE_HM", "obj_type": "pool",
//	          "obj_name": "web", "tenant": "admin", "report_timestamp": 1764090000,
//	          "event_details": {"se_hm_pool_details": {"pool": "web"}}}}
//
// The event id (data.event_id, also the CloudEvents type) names the kind of
// event and matches ^[A-Z][A-Z0-9_]*$. The CloudEvents id is unique per
// occurrence, a UUIDv7 when the producer gives none, and is the JetStream
// Nats-Msg-Id that de-duplicates publishes. For an event id in the
// catalogue (see [Catalogue]), event_details holds exactly one key, the
// catalogue's details key, as in Avi; [Decode] wraps details given without
// it. A producer may publish a bare record (the data object alone) instead
// of a CloudEvent; [Decode] fills in the rest. CloudEvents extension
// attributes are kept.
//
// # Subjects
//
// An event is stored on the subject
//
//	vigil.events.<EVENT_ID>.<obj_type>.<obj_name>
//
// Each of the last three tokens is escaped so that any value makes exactly
// one valid token:
//
//   - the empty string is written "_", and the string "_" itself "%5F";
//   - every byte outside printable ASCII (0x21–0x7E), and every '.', '*',
//     '>' and '%', is written %XX: '%' and the byte's value in upper-case
//     hex, byte by byte over the UTF-8 encoding;
//   - every other byte is kept.
//
// So pool "web" gives vigil.events.SERVER_DOWN.pool.web, virtual service
// "shop.example.com" gives vigil.events.VS_DOWN.virtualservice.shop%2Eexample%2Ecom,
// and "my pool" gives my%20pool. Subscribe with ordinary NATS wildcards, e.g.
// vigil.events.SERVER_DOWN.> or vigil.events.*.pool.web. [EscapeToken],
// [UnescapeToken], [SubjectFor] and [FilterSubject] implement the rules.
//
// NATS clients publish events under vigil.ingest; a validator moves each
// message to its vigil.events subject, or under vigil.rejected with the
// reason.
package events
