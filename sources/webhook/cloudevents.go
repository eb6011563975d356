package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigilhq/vigil/events"
)

// MaxBatch bounds the events of one CloudEvents batch.
const MaxBatch = 1000

// Media types of the CloudEvents HTTP binding.
const (
	ContentTypeCloudEvents      = "application/cloudevents+json"
	ContentTypeCloudEventsBatch = "application/cloudevents-batch+json"
)

// required are the attributes CloudEvents 1.0 requires, in the order they
// are checked.
var required = []string{"specversion", "id", "source", "type"}

// decodeCloudEvents reads the HTTP binding: batched, structured or binary
// mode by Content-Type. Each event is read by events.Decode, which also
// checks vigil's rules (data is the event record).
func (rc *receiver) decodeCloudEvents(d *delivery) ([]item, error) {
	var (
		evs []*events.Event
		err error
	)
	switch {
	case strings.HasPrefix(d.ctype, "application/cloudevents-batch"):
		evs, err = DecodeBatch(d.body, rc.source, d.now)
	case strings.HasPrefix(d.ctype, "application/cloudevents"):
		evs, err = decodeStructuredOne(d.body, rc.source, d.now)
	default:
		var ev *events.Event
		if ev, err = DecodeBinary(d.h, d.body, rc.source, d.now); err == nil {
			evs = []*events.Event{ev}
		}
	}
	if err != nil {
		return nil, err
	}
	items := make([]item, len(evs))
	for i, ev := range evs {
		if ev.Extensions == nil {
			ev.Extensions = map[string]any{}
		}
		// The producer's source and id name the occurrence.
		ev.Extensions[ExtReceiver] = rc.name
		ev.Extensions[ExtDeliveryID] = ev.ID
		items[i] = item{ev: ev, key: hashKey(rc.name, "ce", ev.Source, ev.ID)}
	}
	return items, nil
}

func decodeStructuredOne(body []byte, source string, now time.Time) ([]*events.Event, error) {
	ev, err := DecodeStructured(body, source, now)
	if err != nil {
		return nil, err
	}
	return []*events.Event{ev}, nil
}

// ceError turns an events.FieldError into a 400 naming the attribute.
func ceError(err error, prefix string) error {
	var fe *events.FieldError
	if errors.As(err, &fe) {
		f := fe.Field
		if prefix != "" {
			f = strings.TrimSuffix(prefix+"."+f, ".")
		}
		return &requestError{status: http.StatusBadRequest, code: codeInvalidEvent, field: f, msg: fe.Message}
	}
	return err
}

// checkRequired reports the first required attribute missing from a
// structured event.
func checkRequired(b []byte, prefix string) error {
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return &requestError{status: http.StatusBadRequest, code: codeInvalidEvent, field: strings.TrimSuffix(prefix, "."), msg: "must be a JSON object (a CloudEvent)"}
	}
	// A body that is not an object of attributes leaves top empty:
	// events.Decode then says what is wrong with it.
	var top map[string]json.RawMessage
	_ = json.Unmarshal(b, &top)
	if top == nil {
		return nil
	}
	for _, k := range required {
		if v, ok := top[k]; !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			return &requestError{status: http.StatusBadRequest, code: codeInvalidEvent, field: prefix + k, msg: "is required by CloudEvents 1.0"}
		}
	}
	return nil
}

// DecodeStructured reads a structured-mode CloudEvent (the JSON document
// is the event). The CloudEvents required attributes must be present.
func DecodeStructured(body []byte, source string, now time.Time) (*events.Event, error) {
	if !utf8.Valid(body) {
		return nil, &requestError{status: http.StatusBadRequest, code: codeInvalidEvent, field: "body", msg: "is not valid UTF-8"}
	}
	if err := checkRequired(body, ""); err != nil {
		return nil, err
	}
	ev, err := events.Decode(body, source, now)
	if err != nil {
		return nil, ceError(err, "")
	}
	return ev, nil
}

// DecodeBatch reads a batched-mode body: a JSON array of structured
// CloudEvents. One invalid event fails the whole batch, its error naming
// the index and the attribute ("[2].type").
func DecodeBatch(body []byte, source string, now time.Time) ([]*events.Event, error) {
	if !utf8.Valid(body) {
		return nil, &requestError{status: http.StatusBadRequest, code: codeInvalidEvent, field: "body", msg: "is not valid UTF-8"}
	}
	var list []json.RawMessage
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, &requestError{status: http.StatusBadRequest, code: codeInvalidEvent, field: "body", msg: fmt.Sprintf("must be a JSON array of CloudEvents: %v", err)}
	}
	if len(list) > MaxBatch {
		return nil, &requestError{status: http.StatusBadRequest, code: codeInvalidEvent, field: "body", msg: fmt.Sprintf("holds %d events, at most %d allowed", len(list), MaxBatch)}
	}
	out := make([]*events.Event, 0, len(list))
	for i, raw := range list {
		p := fmt.Sprintf("[%d].", i)
		if err := checkRequired(raw, p); err != nil {
			return nil, err
		}
		ev, err := events.Decode(raw, source, now)
		if err != nil {
			return nil, ceError(err, fmt.Sprintf("[%d]", i))
		}
		out = append(out, ev)
	}
	return out, nil
}

// DecodeBinary reads a binary-mode CloudEvent: the attributes and
// extensions are ce- headers (percent-decoded), Content-Type is
// datacontenttype and the body is the data (the event record).
func DecodeBinary(h http.Header, body []byte, source string, now time.Time) (*events.Event, error) {
	doc := map[string]json.RawMessage{}
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if len(k) < 4 || !strings.EqualFold(k[:3], "ce-") {
			continue
		}
		attr := strings.ToLower(k[3:])
		vs := h[k]
		if len(vs) != 1 {
			return nil, &requestError{status: http.StatusBadRequest, code: codeInvalidEvent, field: attr, msg: fmt.Sprintf("header %s is given more than once", k)}
		}
		if attr == "datacontenttype" {
			return nil, &requestError{status: http.StatusBadRequest, code: codeInvalidEvent, field: attr, msg: "must not be sent as ce-datacontenttype in binary mode; Content-Type carries it"}
		}
		if attr == "data" || attr == "data_base64" {
			return nil, &requestError{status: http.StatusBadRequest, code: codeInvalidEvent, field: attr, msg: "is the body in binary mode, not a header"}
		}
		v, err := DecodeHeaderValue(vs[0])
		if err != nil {
			return nil, &requestError{status: http.StatusBadRequest, code: codeInvalidEvent, field: attr, msg: fmt.Sprintf("header %s: %v", k, err)}
		}
		enc, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("encode attribute %s: %w", attr, err)
		}
		doc[attr] = enc
	}
	if _, ok := doc["specversion"]; !ok {
		return nil, &requestError{status: http.StatusBadRequest, code: codeInvalidEvent, field: "specversion", msg: "is required: binary mode needs the ce-specversion header (or send application/cloudevents+json)"}
	}
	for _, k := range required[1:] {
		if _, ok := doc[k]; !ok {
			return nil, &requestError{status: http.StatusBadRequest, code: codeInvalidEvent, field: k, msg: fmt.Sprintf("is required by CloudEvents 1.0: send header ce-%s", k)}
		}
	}
	if ct := h.Get("Content-Type"); ct != "" {
		enc, err := json.Marshal(ct)
		if err != nil {
			return nil, fmt.Errorf("encode content type: %w", err)
		}
		doc["datacontenttype"] = enc
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if !utf8.Valid(body) {
			return nil, &requestError{status: http.StatusBadRequest, code: codeInvalidEvent, field: "data", msg: "the body is not valid UTF-8"}
		}
		if !json.Valid(body) {
			return nil, &requestError{status: http.StatusBadRequest, code: codeInvalidEvent, field: "data", msg: "the body must be a JSON object (the event record)"}
		}
		doc["data"] = body
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode binary-mode event: %w", err)
	}
	ev, err := events.Decode(b, source, now)
	if err != nil {
		return nil, ceError(err, "")
	}
	return ev, nil
}

// DecodeHeaderValue undoes the percent-encoding of a ce- header value:
// %XY (either case) is a byte, and the result must be valid UTF-8.
func DecodeHeaderValue(v string) (string, error) {
	if strings.IndexByte(v, '%') < 0 {
		if !utf8.ValidString(v) {
			return "", errors.New("not valid UTF-8")
		}
		return v, nil
	}
	b := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(v) {
			return "", fmt.Errorf("truncated percent-encoding at byte %d", i)
		}
		hi, ok1 := unhex(v[i+1])
		lo, ok2 := unhex(v[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("invalid percent-encoding at byte %d", i)
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	if !utf8.Valid(b) {
		return "", errors.New("decodes to invalid UTF-8")
	}
	return string(b), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
