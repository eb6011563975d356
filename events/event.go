package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"mime"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Fixed values of the record.
const (
	// SpecVersion is the CloudEvents version vigil speaks.
	SpecVersion = "1.0"
	// ContentTypeJSON is the datacontenttype of every event.
	ContentTypeJSON = "application/json"
	// DefaultTenant is the tenant of an event that names none.
	DefaultTenant = "admin"
)

// Bounds checked by [Decode] and [New]. Lengths are in bytes: the escaped
// subject of an event must fit a NATS control line (4 KiB by default).
const (
	MaxEventIDLength       = 128
	MaxIDLength            = 128
	MaxSourceLength        = 256
	MaxObjLength           = 256
	MaxExtensionNameLength = 20
)

// Event is a CloudEvents 1.0 structured-mode event whose data is an
// Avi-style Record. Its JSON form is produced by [Event.Marshal]; read
// untrusted input with [Decode].
type Event struct {
	// SpecVersion is always "1.0".
	SpecVersion string `json:"specversion"`
	// ID is unique per occurrence: a UUIDv7 when the producer gives none.
	// It is also the JetStream Nats-Msg-Id, so a repeated publish with the
	// same id is dropped as a duplicate.
	ID string `json:"id"`
	// Source is a URI-reference naming the producer, e.g. "/vigil/api".
	Source string `json:"source"`
	// Type equals Data.EventID.
	Type string `json:"type"`
	// Subject is "<obj_type>/<obj_name>", or empty when both are empty.
	Subject string `json:"subject,omitempty"`
	// Time is when the event happened, with nanoseconds, in UTC; rolling
	// windows are measured on it.
	Time time.Time `json:"time"`
	// DataContentType is "application/json", possibly with parameters.
	DataContentType string `json:"datacontenttype,omitempty"`
	// Data is the Avi-style record.
	Data Record `json:"data"`
	// Extensions holds CloudEvents extension attributes (names of a-z and
	// 0-9, at most 20 characters), which appear in JSON as top-level
	// attributes. Values read by Decode are string, bool or json.Number.
	Extensions map[string]any `json:"-"`
}

// Record is the Avi EventLog shape, the data of an Event.
type Record struct {
	EventID          string                     `json:"event_id"`
	Module           string                     `json:"module"`
	ObjType          string                     `json:"obj_type"`
	ObjName          string                     `json:"obj_name"`
	ObjUUID          string                     `json:"obj_uuid,omitempty"`
	Tenant           string                     `json:"tenant"`
	ReportTimestamp  int64                      `json:"report_timestamp"` // epoch seconds
	EventDetails     map[string]json.RawMessage `json:"event_details,omitempty"`
	DetailsSummary   string                     `json:"details_summary,omitempty"`
	EventDescription string                     `json:"event_description,omitempty"`
}

// FieldError is a rule an event breaks. Field is the JSON path of the
// offending value in the input, e.g. "data.event_id", "id" or "time"; it is
// empty when the document as a whole is at fault.
type FieldError struct {
	Field, Message string
}

// Error returns Field + ": " + Message, or Message alone when Field is empty.
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// New builds an event for one of vigil's own producers. It gives the event a
// UUIDv7 id, the catalogue's module (or ModuleCustom), tenant "admin",
// time now and the matching report_timestamp. details, when not nil, must
// encode to a JSON object; for an event id with a catalogue details key it
// is wrapped under that key unless it already is exactly {key: {...}}.
func New(eventID, objType, objName string, details any, source string, now time.Time) (*Event, error) {
	p := &parsed{cloud: true}
	p.data.eventID, p.data.objType, p.data.objName = &eventID, &objType, &objName
	if details != nil {
		raw, err := marshalNoEscape(details)
		if err != nil {
			return nil, fmt.Errorf("new event %s: encode details: %w", eventID, err)
		}
		if !bytes.Equal(raw, []byte("null")) {
			d, ferr := parseDetails(raw, "data.event_details")
			if ferr != nil {
				return nil, ferr
			}
			p.data.details = d
		}
	}
	return p.event(source, now)
}

// Decode reads one event from b, which is either a CloudEvents structured
// JSON document (it has "specversion") or a bare Record (it has "event_id"),
// fills in what is missing and checks every rule. Missing values are: id (a
// new UUIDv7), source (the argument), time (now), specversion, type (the
// event id), datacontenttype, subject, module (the catalogue's, else
// "CUSTOM"), tenant ("admin") and report_timestamp (from time). For an event
// id with a catalogue details key, event_details that is not exactly that
// one key is wrapped under it. A broken rule is returned as a *FieldError.
// The caller bounds the size of b.
func Decode(b []byte, source string, now time.Time) (*Event, error) {
	p, err := parse(b)
	if err != nil {
		return nil, err
	}
	return p.event(source, now)
}

// UnmarshalJSON reads either shape that [Decode] reads, without filling
// defaults or checking rules beyond the JSON types. Use Decode for input
// that was not produced by [Event.Marshal].
func (e *Event) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil
	}
	p, err := parse(b)
	if err != nil {
		return err
	}
	*e = p.raw()
	return nil
}

// Marshal returns the canonical JSON form of e: attributes in a fixed order,
// extensions sorted by name, data last, time in UTC, no HTML escaping.
func (e *Event) Marshal() ([]byte, error) {
	return e.MarshalJSON()
}

// MarshalJSON implements json.Marshaler; see [Event.Marshal].
func (e Event) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// encode writes v without the newline Encoder adds.
	encode := func(v any) error {
		if err := enc.Encode(v); err != nil {
			return err
		}
		buf.Truncate(buf.Len() - 1)
		return nil
	}
	put := func(k string, v any) error {
		if buf.Len() == 0 {
			buf.WriteByte('{')
		} else {
			buf.WriteByte(',')
		}
		if err := encode(k); err != nil {
			return err
		}
		buf.WriteByte(':')
		if err := encode(v); err != nil {
			return fmt.Errorf("encode event %s: %s: %w", e.ID, k, err)
		}
		return nil
	}
	type attr struct {
		k    string
		v    any
		omit bool
	}
	if y := e.Time.Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("encode event %s: time %s is outside years 0-9999", e.ID, e.Time)
	}
	attrs := []attr{
		{"specversion", e.SpecVersion, false},
		{"id", e.ID, false},
		{"source", e.Source, false},
		{"type", e.Type, false},
		{"subject", e.Subject, e.Subject == ""},
		{"time", e.Time.UTC().Format(time.RFC3339Nano), false},
		{"datacontenttype", e.DataContentType, e.DataContentType == ""},
	}
	for _, a := range attrs {
		if a.omit {
			continue
		}
		if err := put(a.k, a.v); err != nil {
			return nil, err
		}
	}
	for _, k := range slices.Sorted(maps.Keys(e.Extensions)) {
		v := e.Extensions[k]
		if reservedAttrs[k] || !validExtensionName(k) {
			return nil, fmt.Errorf("encode event %s: invalid extension attribute name %q", e.ID, k)
		}
		if !validExtensionValue(v) {
			return nil, fmt.Errorf("encode event %s: extension %s: %T is not a string, number or boolean", e.ID, k, v)
		}
		if err := put(k, v); err != nil {
			return nil, err
		}
	}
	if err := put("data", e.Data); err != nil {
		return nil, err
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// reservedAttrs are the attributes Event has fields for; no extension may
// use their names.
var reservedAttrs = map[string]bool{
	"specversion": true, "id": true, "source": true, "type": true, "subject": true,
	"time": true, "datacontenttype": true, "data": true, "data_base64": true,
}

// recordKeys are the fields of Record.
var recordKeys = map[string]bool{
	"event_id": true, "module": true, "obj_type": true, "obj_name": true, "obj_uuid": true,
	"tenant": true, "report_timestamp": true, "event_details": true,
	"details_summary": true, "event_description": true,
}

// parsed is an input document split into its values; nil means absent.
type parsed struct {
	cloud                                        bool
	specVersion, id, source, typ, subject, ctype *string
	time                                         *time.Time
	ext                                          map[string]any
	data                                         parsedRecord
}

type parsedRecord struct {
	eventID, module, objType, objName, objUUID, tenant, summary, description *string
	reportTimestamp                                                          *int64
	details                                                                  map[string]json.RawMessage
}

// parse splits b into values and checks their JSON types.
func parse(b []byte) (*parsed, error) {
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, fieldErr("", "body must be a JSON object")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, diagnose(b)
	}
	p := &parsed{}
	var err error
	switch {
	case has(top, "specversion"):
		p.cloud = true
		err = p.parseCloud(top)
	case has(top, "event_id"):
		// A bare record may name its occurrence: "id" is the dedup key.
		if raw, ok := top["id"]; ok {
			if p.id, err = parseString(raw, "id"); err != nil {
				return nil, err
			}
			delete(top, "id")
		}
		err = p.data.parse(top, "")
	default:
		err = fieldErr("", "body must be a CloudEvent (with specversion) or an event record (with event_id)")
	}
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(b) {
		// Only an object key can get here; values are checked one by one.
		return nil, fieldErr("", "body is not valid UTF-8")
	}
	return p, nil
}

// diagnose explains why b, which starts with '{', is not one JSON object.
func diagnose(b []byte) *FieldError {
	dec := json.NewDecoder(bytes.NewReader(b))
	var top map[string]json.RawMessage
	if err := dec.Decode(&top); err != nil {
		return fieldErr("", "invalid JSON: %s", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fieldErr("", "unexpected data after the JSON object")
	}
	return fieldErr("", "invalid JSON")
}

// cloudKeys and recordFieldKeys fix the order in which attributes are
// checked, so that the first broken rule reported does not vary.
var (
	cloudKeys       = []string{"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data", "data_base64"}
	recordFieldKeys = []string{"event_id", "module", "obj_type", "obj_name", "obj_uuid", "tenant", "report_timestamp", "event_details", "details_summary", "event_description"}
)

// orderedKeys returns the keys of m: those in known in that order, then the
// others sorted.
func orderedKeys(m map[string]json.RawMessage, known []string) []string {
	keys := make([]string, 0, len(m))
	for _, k := range known {
		if _, ok := m[k]; ok {
			keys = append(keys, k)
		}
	}
	if len(keys) == len(m) {
		return keys
	}
	n := len(keys)
	for k := range m {
		if !slices.Contains(known, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys[n:])
	return keys
}

func (p *parsed) parseCloud(top map[string]json.RawMessage) error {
	for _, k := range orderedKeys(top, cloudKeys) {
		raw := top[k]
		var err error
		switch k {
		case "specversion":
			p.specVersion, err = parseString(raw, k)
		case "id":
			p.id, err = parseString(raw, k)
		case "source":
			p.source, err = parseString(raw, k)
		case "type":
			p.typ, err = parseString(raw, k)
		case "subject":
			p.subject, err = parseString(raw, k)
		case "datacontenttype":
			p.ctype, err = parseString(raw, k)
		case "time":
			var s *string
			if s, err = parseString(raw, k); err == nil && s != nil {
				t, perr := time.Parse(time.RFC3339Nano, *s)
				if perr != nil {
					return fieldErr(k, "must be an RFC 3339 timestamp, e.g. 2025-11-25T17:00:00.123Z")
				}
				t = t.UTC()
				if y := t.Year(); y < 0 || y > 9999 {
					return fieldErr(k, "must be between years 0000 and 9999 in UTC")
				}
				p.time = &t
			}
		case "data":
			if isNull(raw) {
				continue
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(raw, &m); err != nil {
				return fieldErr(k, "must be a JSON object (the event record)")
			}
			err = p.data.parse(m, "data.")
		case "data_base64":
			return fieldErr(k, "binary data is not supported: send the record as a JSON object in data, with datacontenttype application/json")
		default:
			if !validExtensionName(k) {
				if recordKeys[k] {
					return fieldErr(k, "is a field of the event record: put it inside data")
				}
				return fieldErr(k, "is not a valid CloudEvents attribute name (a-z and 0-9 only, at most %d characters)", MaxExtensionNameLength)
			}
			var v any
			if v, err = parseExtension(raw, k); err == nil && v != nil {
				if _, isString := v.(string); k == "dataschema" && !isString {
					return fieldErr(k, "must be a string (a URI)")
				}
				if p.ext == nil {
					p.ext = make(map[string]any)
				}
				p.ext[k] = v
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *parsedRecord) parse(m map[string]json.RawMessage, prefix string) error {
	for _, k := range orderedKeys(m, recordFieldKeys) {
		raw, f := m[k], prefix+k
		var err error
		switch k {
		case "event_id":
			r.eventID, err = parseString(raw, f)
		case "module":
			r.module, err = parseString(raw, f)
		case "obj_type":
			r.objType, err = parseString(raw, f)
		case "obj_name":
			r.objName, err = parseString(raw, f)
		case "obj_uuid":
			r.objUUID, err = parseString(raw, f)
		case "tenant":
			r.tenant, err = parseString(raw, f)
		case "details_summary":
			r.summary, err = parseString(raw, f)
		case "event_description":
			r.description, err = parseString(raw, f)
		case "report_timestamp":
			if isNull(raw) {
				continue
			}
			// raw is valid JSON, so ParseInt accepts exactly the integers.
			n, perr := strconv.ParseInt(string(raw), 10, 64)
			if perr != nil {
				return fieldErr(f, "must be an integer (epoch seconds)")
			}
			r.reportTimestamp = &n
		case "event_details":
			if isNull(raw) {
				continue
			}
			r.details, err = parseDetails(raw, f)
		default:
			return fieldErr(f, "is not a field of the event record")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// parseDetails reads an event_details object (raw is not null); each value
// is compacted so that the record's encoding is canonical.
func parseDetails(raw json.RawMessage, field string) (map[string]json.RawMessage, error) {
	if !utf8.Valid(raw) {
		return nil, fieldErr(field, "is not valid UTF-8")
	}
	if bytes.ContainsAny(raw, " \t\r\n") {
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return nil, fieldErr(field, "invalid JSON: %s", err)
		}
		raw = buf.Bytes()
	}
	var d map[string]json.RawMessage
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fieldErr(field, "must be a JSON object")
	}
	return d, nil
}

func parseString(raw json.RawMessage, field string) (*string, error) {
	if isNull(raw) {
		return nil, nil
	}
	if !utf8.Valid(raw) {
		return nil, fieldErr(field, "is not valid UTF-8")
	}
	// raw is valid JSON: a string without escapes is its own value.
	if n := len(raw); n >= 2 && raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		s := string(raw[1 : n-1])
		return &s, nil
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return nil, fieldErr(field, "must be a string")
	}
	return &s, nil
}

func parseExtension(raw json.RawMessage, field string) (any, error) {
	if isNull(raw) {
		return nil, nil
	}
	if !utf8.Valid(raw) {
		return nil, fieldErr(field, "is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fieldErr(field, "invalid JSON: %s", err)
	}
	switch v.(type) {
	case string, bool, json.Number:
		return v, nil
	}
	return nil, fieldErr(field, "extension attribute must be a string, number or boolean")
}

// raw returns the values as they are, without defaults.
func (p *parsed) raw() Event {
	var e Event
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&e.SpecVersion, p.specVersion)
	set(&e.ID, p.id)
	set(&e.Source, p.source)
	set(&e.Type, p.typ)
	set(&e.Subject, p.subject)
	set(&e.DataContentType, p.ctype)
	if p.time != nil {
		e.Time = *p.time
	}
	e.Extensions = p.ext
	r, d := &e.Data, &p.data
	set(&r.EventID, d.eventID)
	set(&r.Module, d.module)
	set(&r.ObjType, d.objType)
	set(&r.ObjName, d.objName)
	set(&r.ObjUUID, d.objUUID)
	set(&r.Tenant, d.tenant)
	set(&r.DetailsSummary, d.summary)
	set(&r.EventDescription, d.description)
	if d.reportTimestamp != nil {
		r.ReportTimestamp = *d.reportTimestamp
	}
	r.EventDetails = d.details
	return e
}

// event fills in missing values and checks every rule.
func (p *parsed) event(source string, now time.Time) (*Event, error) {
	pre := ""
	if p.cloud {
		pre = "data."
	}
	e := p.raw()
	e.SpecVersion = SpecVersion
	if p.specVersion != nil && *p.specVersion != SpecVersion {
		return nil, fieldErr("specversion", "must be %q", SpecVersion)
	}

	// Event id: data.event_id, or the CloudEvents type alone.
	idField := pre + "event_id"
	switch {
	case p.data.eventID == nil && p.typ != nil:
		idField = "type"
		e.Data.EventID = *p.typ
	case p.data.eventID != nil && p.typ != nil && *p.typ != *p.data.eventID:
		return nil, fieldErr("type", "%q differs from %s %q", *p.typ, idField, *p.data.eventID)
	}
	if e.Data.EventID == "" && p.cloud && p.data.eventID == nil {
		return nil, fieldErr("type", "is required (the event id, e.g. SERVER_DOWN)")
	}
	if msg := checkEventID(e.Data.EventID); msg != "" {
		return nil, fieldErr(idField, "%s", msg)
	}
	e.Type = e.Data.EventID
	info, known := Lookup(e.Data.EventID)

	if p.id == nil {
		id, err := uuid.NewV7()
		if err != nil {
			return nil, fmt.Errorf("generate event id: %w", err)
		}
		e.ID = id.String()
	} else if msg := checkID(e.ID); msg != "" {
		return nil, fieldErr("id", "%s", msg)
	}

	if p.source == nil {
		e.Source = source
	}
	if msg := checkSource(e.Source); msg != "" {
		return nil, fieldErr("source", "%s", msg)
	}

	if p.time == nil {
		e.Time = now.UTC()
	}

	if p.ctype == nil {
		e.DataContentType = ContentTypeJSON
	} else if mt, _, err := mime.ParseMediaType(e.DataContentType); err != nil || mt != ContentTypeJSON {
		return nil, fieldErr("datacontenttype", "must be %s, optionally with parameters", ContentTypeJSON)
	}

	r := &e.Data
	if msg := checkObj(r.ObjType); msg != "" {
		return nil, fieldErr(pre+"obj_type", "%s", msg)
	}
	if msg := checkObj(r.ObjName); msg != "" {
		return nil, fieldErr(pre+"obj_name", "%s", msg)
	}
	subject := ""
	if r.ObjType != "" || r.ObjName != "" {
		subject = r.ObjType + "/" + r.ObjName
	}
	if p.subject != nil && *p.subject != subject {
		return nil, fieldErr("subject", "must be <obj_type>/<obj_name> of the record (%q)", subject)
	}
	e.Subject = subject

	if r.Module == "" {
		r.Module = ModuleOf(r.EventID)
	}
	if r.Tenant == "" {
		r.Tenant = DefaultTenant
	}
	if p.data.reportTimestamp == nil {
		r.ReportTimestamp = e.Time.Unix()
	}
	key := ""
	if known {
		key = info.DetailsKey
	}
	d, err := normalizeDetails(r.EventDetails, key, pre+"event_details")
	if err != nil {
		return nil, err
	}
	r.EventDetails = d
	return &e, nil
}

// normalizeDetails applies the one-key rule: with a details key, anything
// but exactly {key: {...}} is wrapped as {key: <given object>}; without one,
// an empty object is dropped.
func normalizeDetails(d map[string]json.RawMessage, key, field string) (map[string]json.RawMessage, error) {
	if d == nil {
		return nil, nil
	}
	if key == "" {
		if len(d) == 0 {
			return nil, nil
		}
		return d, nil
	}
	if v, ok := d[key]; ok && len(d) == 1 {
		if !isObject(v) {
			return nil, fieldErr(field+"."+key, "must be a JSON object")
		}
		return d, nil
	}
	raw, err := marshalNoEscape(d)
	if err != nil {
		return nil, fieldErr(field, "invalid JSON: %s", err)
	}
	return map[string]json.RawMessage{key: raw}, nil
}

// ValidEventID reports whether id is a valid event id: ^[A-Z][A-Z0-9_]*$,
// at most 128 bytes.
func ValidEventID(id string) bool { return checkEventID(id) == "" }

func checkEventID(id string) string {
	if id == "" {
		return "is required (the event id, e.g. SERVER_DOWN)"
	}
	if len(id) > MaxEventIDLength {
		return fmt.Sprintf("is longer than %d bytes", MaxEventIDLength)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := 'A' <= c && c <= 'Z' || i > 0 && ('0' <= c && c <= '9' || c == '_')
		if !ok {
			return fmt.Sprintf("%q must match ^[A-Z][A-Z0-9_]*$", id)
		}
	}
	return ""
}

func checkID(id string) string {
	if id == "" {
		return "must not be empty"
	}
	if len(id) > MaxIDLength {
		return fmt.Sprintf("is longer than %d bytes", MaxIDLength)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return "must be printable ASCII without spaces"
		}
	}
	return ""
}

func checkSource(s string) string {
	if s == "" {
		return "is required (a URI-reference naming the producer)"
	}
	if len(s) > MaxSourceLength {
		return fmt.Sprintf("is longer than %d bytes", MaxSourceLength)
	}
	if !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0 {
		return "must be a URI-reference without spaces or control characters"
	}
	if _, err := url.Parse(s); err != nil {
		return "must be a URI-reference"
	}
	return ""
}

func checkObj(s string) string {
	if len(s) > MaxObjLength {
		return fmt.Sprintf("is longer than %d bytes", MaxObjLength)
	}
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "must not contain control characters"
	}
	return ""
}

func validExtensionName(k string) bool {
	if k == "" || len(k) > MaxExtensionNameLength {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func validExtensionValue(v any) bool {
	switch v := v.(type) {
	case string, bool, json.Number,
		int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return true
	case float64:
		return !math.IsInf(v, 0) && !math.IsNaN(v)
	case float32:
		return !math.IsInf(float64(v), 0) && !math.IsNaN(float64(v))
	}
	return false
}

func has(m map[string]json.RawMessage, k string) bool {
	_, ok := m[k]
	return ok
}

func isNull(raw []byte) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

func isObject(raw []byte) bool {
	t := bytes.TrimLeft(raw, " \t\r\n")
	return len(t) > 0 && t[0] == '{'
}

// marshalNoEscape is json.Marshal without HTML escaping.
func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
