package webhook

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vigilhq/vigil/events"
)

// DefaultEventID is the event id of a json receiver that maps none.
const DefaultEventID = "WEBHOOK_RECEIVED"

// DetailsKey is the event_details key under which the events built from a
// payload keep it.
const DetailsKey = "webhook_received_details"

// Extension attributes every event from a receiver carries.
const (
	ExtReceiver   = "receiver"
	ExtDeliveryID = "deliveryid"
)

// Details is what event_details[DetailsKey] holds.
type Details struct {
	Receiver   string          `json:"receiver"`
	DeliveryID string          `json:"delivery_id,omitempty"`
	Format     string          `json:"format"`
	Payload    json.RawMessage `json:"payload"`
}

// delivery is one request as the decoders see it.
type delivery struct {
	h     http.Header
	body  []byte
	now   time.Time
	ctype string // media type, lower case; "" when not given
}

// item is one event of a delivery and its dedup key ("" for none).
type item struct {
	ev  *events.Event
	key string
}

// decode turns a delivery into events.
func (rc *receiver) decode(d *delivery) ([]item, error) {
	switch rc.spec.Format {
	case FormatCloudEvents:
		return rc.decodeCloudEvents(d)
	case FormatAlertmanager:
		return rc.decodeAlertmanager(d)
	case FormatGitHub:
		return rc.decodeGitHub(d)
	case FormatStandardWebhooks:
		return rc.decodeStandard(d)
	}
	return rc.decodeJSON(d)
}

// mediaType returns the lower-case media type of a Content-Type value.
func mediaType(ct string) (string, error) {
	if ct == "" {
		return "", nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", &requestError{status: http.StatusUnsupportedMediaType, code: codeUnsupportedMediaType, field: "Content-Type", msg: fmt.Sprintf("%q is not a valid media type", clip(ct))}
	}
	return mt, nil
}

func isJSONType(mt string) bool {
	return mt == "" || mt == "application/json" || strings.HasSuffix(mt, "+json")
}

func wantJSON(d *delivery) error {
	if !isJSONType(d.ctype) {
		return &requestError{status: http.StatusUnsupportedMediaType, code: codeUnsupportedMediaType, field: "Content-Type", msg: fmt.Sprintf("must be application/json, got %q", d.ctype)}
	}
	return nil
}

// parseJSON checks that b is one valid UTF-8 JSON value and decodes it.
func parseJSON(b []byte, field string) (any, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, badRequest(field, "is empty; a JSON document is required")
	}
	if !utf8.Valid(b) {
		return nil, badRequest(field, "is not valid UTF-8")
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, badRequest(field, "invalid JSON at byte %d: %v", se.Offset, err)
		}
		return nil, badRequest(field, "invalid JSON: %v", err)
	}
	return v, nil
}

// deliveryID checks an id that names a delivery.
func deliveryID(field, id string) (string, error) {
	switch {
	case id == "":
		return "", badRequest(field, "is required: the delivery id")
	case len(id) > MaxDeliveryIDLength:
		return "", badRequest(field, "is longer than %d bytes", MaxDeliveryIDLength)
	case !utf8.ValidString(id):
		return "", badRequest(field, "is not valid UTF-8")
	case strings.IndexFunc(id, unicode.IsControl) >= 0:
		return "", badRequest(field, "must not contain control characters")
	}
	return id, nil
}

// header returns the single value of a header, "" when it is absent.
func header(h http.Header, name string) (string, error) {
	vs := h.Values(name)
	if len(vs) > 1 {
		return "", badRequest(name, "is given more than once")
	}
	if len(vs) == 0 {
		return "", nil
	}
	return vs[0], nil
}

// hashKey is the dedup key and event id suffix of a delivery: 48 hex
// digits of SHA-256 over the receiver and the parts.
func hashKey(receiver string, parts ...string) string {
	h := sha256.New()
	h.Write([]byte(receiver))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))[:48]
}

// event builds one event of the receiver. dedup, when not empty, names
// the occurrence: it gives the dedup key and the event's id.
func (rc *receiver) event(eventID, objType, objName, delivery, dedup string, payload json.RawMessage, now time.Time) (item, error) {
	det := map[string]Details{DetailsKey: {Receiver: rc.name, DeliveryID: delivery, Format: rc.spec.Format, Payload: payload}}
	ev, err := events.New(eventID, objType, objName, det, rc.source, now)
	if err != nil {
		var fe *events.FieldError
		if errors.As(err, &fe) {
			return item{}, badRequest(strings.TrimPrefix(fe.Field, "data."), "%s", fe.Message)
		}
		return item{}, fmt.Errorf("receiver %s: build event: %w", rc.name, err)
	}
	ev.Extensions = map[string]any{ExtReceiver: rc.name}
	if delivery != "" {
		ev.Extensions[ExtDeliveryID] = delivery
	}
	it := item{ev: ev}
	if dedup != "" {
		it.key = hashKey(rc.name, dedup)
		ev.ID = "wh-" + it.key
	}
	return it, nil
}

// object evaluates the event id and object of a JSON body. defID, defType
// and defName apply where the spec maps nothing.
func (rc *receiver) object(body any, h http.Header, defID, defType, defName string) (id, typ, name string, err error) {
	var hm map[string]string
	if rc.m.usesHeaders {
		hm = headerMap(h)
	}
	if id, err = rc.m.eventID.eval(body, hm); err != nil {
		return "", "", "", err
	}
	if rc.m.eventID != nil && !rc.m.eventID.isFixed {
		if id == "" {
			return "", "", "", badRequest("event_id", "the body gives no event id (%s)", rc.m.eventID.describe())
		}
		id = toEventID(id)
		if !events.ValidEventID(id) {
			return "", "", "", badRequest("event_id", "%q from the body is not a valid event id (^[A-Z][A-Z0-9_]*$)", clip(id))
		}
	}
	if id == "" {
		id = defID
	}
	if typ, err = rc.m.objType.eval(body, hm); err != nil {
		return "", "", "", err
	}
	if rc.m.objType == nil {
		typ = defType
	}
	if name, err = rc.m.objName.eval(body, hm); err != nil {
		return "", "", "", err
	}
	if rc.m.objName == nil {
		name = defName
	}
	return id, typ, name, nil
}

func (v *value) describe() string {
	if v.path != nil {
		return v.field + "_path " + strings.Join(v.path, ".")
	}
	return v.field + "_expr"
}

// decodeJSON: one event per request, mapped by the spec.
func (rc *receiver) decodeJSON(d *delivery) ([]item, error) {
	if err := wantJSON(d); err != nil {
		return nil, err
	}
	body, err := parseJSON(d.body, "body")
	if err != nil {
		return nil, err
	}
	id, typ, name, err := rc.object(body, d.h, "", "", "")
	if err != nil {
		return nil, err
	}
	var did string
	switch {
	case rc.m.deliveryHeader != "":
		v, err := header(d.h, rc.m.deliveryHeader)
		if err != nil {
			return nil, err
		}
		if v != "" {
			if did, err = deliveryID(rc.m.deliveryHeader, v); err != nil {
				return nil, err
			}
		}
	case rc.m.deliveryPath != nil:
		if x, ok := lookup(body, rc.m.deliveryPath); ok {
			s, ok := scalarString(x)
			if !ok {
				return nil, badRequest(strings.Join(rc.m.deliveryPath, "."), "must be a string or a number (the delivery id)")
			}
			if did, err = deliveryID(strings.Join(rc.m.deliveryPath, "."), s); err != nil {
				return nil, err
			}
		}
	}
	it, err := rc.event(id, typ, name, did, did, d.body, d.now)
	if err != nil {
		return nil, err
	}
	return []item{it}, nil
}

// decodeGitHub: X-GitHub-Event gives the event id (GITHUB_PUSH),
// X-GitHub-Delivery the dedup id; the body is JSON or, for hooks set to
// application/x-www-form-urlencoded, the JSON in the payload field.
func (rc *receiver) decodeGitHub(d *delivery) ([]item, error) {
	kind, err := header(d.h, HeaderGitHubEvent)
	if err != nil {
		return nil, err
	}
	if kind == "" {
		return nil, badRequest(HeaderGitHubEvent, "is required (the GitHub event name, e.g. push)")
	}
	if len(kind) > 64 {
		return nil, badRequest(HeaderGitHubEvent, "is longer than 64 bytes")
	}
	did, err := header(d.h, HeaderGitHubDelivery)
	if err != nil {
		return nil, err
	}
	if did, err = deliveryID(HeaderGitHubDelivery, did); err != nil {
		return nil, err
	}
	raw, err := githubPayload(d)
	if err != nil {
		return nil, err
	}
	body, err := parseJSON(raw, "body")
	if err != nil {
		return nil, err
	}
	typ, name := "", ""
	if s, ok := lookupString(body, "repository", "full_name"); ok {
		typ, name = "repository", s
	} else if s, ok := lookupString(body, "organization", "login"); ok {
		typ, name = "organization", s
	}
	id, typ, name, err := rc.object(body, d.h, "GITHUB_"+toEventID(kind), typ, name)
	if err != nil {
		return nil, err
	}
	it, err := rc.event(id, typ, name, did, did, raw, d.now)
	if err != nil {
		return nil, err
	}
	return []item{it}, nil
}

// GitHubPayload returns the JSON document of a GitHub delivery whose
// Content-Type is contentType.
func GitHubPayload(contentType string, body []byte) ([]byte, error) {
	mt, err := mediaType(contentType)
	if err != nil {
		return nil, err
	}
	return githubPayload(&delivery{ctype: mt, body: body})
}

func githubPayload(d *delivery) ([]byte, error) {
	if d.ctype != "application/x-www-form-urlencoded" {
		if !isJSONType(d.ctype) {
			return nil, &requestError{status: http.StatusUnsupportedMediaType, code: codeUnsupportedMediaType, field: "Content-Type", msg: fmt.Sprintf("must be application/json or application/x-www-form-urlencoded, got %q", d.ctype)}
		}
		return d.body, nil
	}
	if !utf8.Valid(d.body) {
		return nil, badRequest("body", "is not valid UTF-8")
	}
	form, err := url.ParseQuery(string(d.body))
	if err != nil {
		return nil, badRequest("body", "is not a valid form: %v", err)
	}
	p := form["payload"]
	if len(p) != 1 {
		return nil, badRequest("payload", "the form must hold exactly one payload field")
	}
	return []byte(p[0]), nil
}

func lookupString(body any, path ...string) (string, bool) {
	v, ok := lookup(body, path)
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	return s, ok && s != ""
}

// decodeStandard: a Standard Webhooks delivery; webhook-id is the dedup
// id, and the event id is mapped by the spec or comes from the body's
// "type" ("invoice.paid" gives INVOICE_PAID).
func (rc *receiver) decodeStandard(d *delivery) ([]item, error) {
	if err := wantJSON(d); err != nil {
		return nil, err
	}
	did, err := header(d.h, HeaderWebhookID)
	if err != nil {
		return nil, err
	}
	if did, err = deliveryID(HeaderWebhookID, did); err != nil {
		return nil, err
	}
	body, err := parseJSON(d.body, "body")
	if err != nil {
		return nil, err
	}
	def := ""
	if rc.m.eventID == nil {
		t, ok := lookupString(body, "type")
		if !ok {
			return nil, badRequest("type", "is required: a string naming the event type (or set event_id on the receiver)")
		}
		def = toEventID(t)
		if !events.ValidEventID(def) {
			return nil, badRequest("type", "%q does not make a valid event id (^[A-Z][A-Z0-9_]*$)", clip(t))
		}
	}
	id, typ, name, err := rc.object(body, d.h, def, "", "")
	if err != nil {
		return nil, err
	}
	it, err := rc.event(id, typ, name, did, did, d.body, d.now)
	if err != nil {
		return nil, err
	}
	return []item{it}, nil
}
