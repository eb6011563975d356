package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

var testNow = time.Date(2025, 11, 25, 17, 0, 0, 123456789, time.UTC)

// designExample is the SERVER_DOWN record of design.md, "The event record".
const designExample = `{"event_id": "SERVER_DOWN", "module": "HEALTH_MONITOR", "obj_type": "pool", "obj_name": "web",
 "obj_uuid": "pool-0f4d", "tenant": "admin", "report_timestamp": 1764090000,
 "event_details": {"se_hm_pool_details": {"pool": "web", "virtual_service": "shop",
    "server": {"ip": {"addr": "10.0.0.5", "type": "V4"}, "port": 8080,
               "failure_code": "CONNECTION_REFUSED"}, "percent_servers_up": 50}}}`

// validCloudEvent returns a valid structured CloudEvent as a map that a test
// may change before encoding it with encodeJSON.
func validCloudEvent() map[string]any {
	return map[string]any{
		"specversion": "1.0",
		"id":          "evt-1",
		"source":      "/test",
		"type":        "SERVER_DOWN",
		"time":        "2025-11-25T17:00:00.5Z",
		"data": map[string]any{
			"event_id": "SERVER_DOWN",
			"obj_type": "pool",
			"obj_name": "web",
		},
	}
}

func encodeJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func data(m map[string]any) map[string]any { return m["data"].(map[string]any) }

func mustDecode(t *testing.T, b []byte) *Event {
	t.Helper()
	ev, err := Decode(b, "/test/source", testNow)
	if err != nil {
		t.Fatalf("Decode(%s): %v", b, err)
	}
	return ev
}

func details(t *testing.T, ev *Event) string {
	t.Helper()
	if ev.Data.EventDetails == nil {
		return ""
	}
	b, err := marshalNoEscape(ev.Data.EventDetails)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func checkUUIDv7(t *testing.T, id string) {
	t.Helper()
	u, err := uuid.Parse(id)
	if err != nil {
		t.Fatalf("id %q is not a UUID: %v", id, err)
	}
	if u.Version() != 7 || u.Variant() != uuid.RFC4122 {
		t.Fatalf("id %q: version %d variant %v, want a UUIDv7", id, u.Version(), u.Variant())
	}
	if id != u.String() {
		t.Fatalf("id %q is not in canonical form", id)
	}
}

func TestDecodeBareRecordFillsDefaults(t *testing.T) {
	ev := mustDecode(t, []byte(`{"event_id":"SERVER_DOWN","obj_type":"pool","obj_name":"web","event_details":{"pool":"web"}}`))
	checkUUIDv7(t, ev.ID)
	want := Event{
		SpecVersion:     "1.0",
		ID:              ev.ID,
		Source:          "/test/source",
		Type:            "SERVER_DOWN",
		Subject:         "pool/web",
		Time:            testNow,
		DataContentType: "application/json",
		Data: Record{
			EventID:         "SERVER_DOWN",
			Module:          "SE_HM",
			ObjType:         "pool",
			ObjName:         "web",
			Tenant:          "admin",
			ReportTimestamp: testNow.Unix(),
			EventDetails:    map[string]json.RawMessage{"se_hm_pool_details": json.RawMessage(`{"pool":"web"}`)},
		},
	}
	if !reflect.DeepEqual(*ev, want) {
		t.Fatalf("Decode:\n got %+v\nwant %+v", *ev, want)
	}
	if ev2 := mustDecode(t, []byte(`{"event_id":"SERVER_DOWN"}`)); ev2.ID == ev.ID {
		t.Fatalf("two events got the same id %s", ev.ID)
	}
}

func TestDecodeCustomEventID(t *testing.T) {
	ev := mustDecode(t, []byte(`{"event_id":"CART_ABANDONED","event_details":{"items":3}}`))
	if ev.Data.Module != ModuleCustom {
		t.Errorf("module = %q, want %q", ev.Data.Module, ModuleCustom)
	}
	if got := details(t, ev); got != `{"items":3}` {
		t.Errorf("event_details = %s, want it unchanged", got)
	}
	if ev.Subject != "" {
		t.Errorf("subject = %q, want empty without obj_type and obj_name", ev.Subject)
	}
	if got, want := ev.NATSSubject(), "vigil.events.CART_ABANDONED._._"; got != want {
		t.Errorf("NATSSubject = %q, want %q", got, want)
	}
}

func TestDecodeDesignExample(t *testing.T) {
	ev := mustDecode(t, []byte(designExample))
	if ev.Data.Module != "HEALTH_MONITOR" {
		t.Errorf("module = %q: a given module must be kept", ev.Data.Module)
	}
	if ev.Data.ReportTimestamp != 1764090000 || ev.Data.ObjUUID != "pool-0f4d" || ev.Data.Tenant != "admin" {
		t.Errorf("record fields changed: %+v", ev.Data)
	}
	got := details(t, ev)
	want := `{"se_hm_pool_details":{"pool":"web","virtual_service":"shop","server":{"ip":{"addr":"10.0.0.5","type":"V4"},"port":8080,"failure_code":"CONNECTION_REFUSED"},"percent_servers_up":50}}`
	if got != want {
		t.Errorf("event_details =\n %s\nwant\n %s", got, want)
	}
	if ev.NATSSubject() != "vigil.events.SERVER_DOWN.pool.web" {
		t.Errorf("NATSSubject = %q", ev.NATSSubject())
	}
}

func TestDecodeStructuredKeepsGivenValues(t *testing.T) {
	in := validCloudEvent()
	in["subject"] = "pool/web"
	in["time"] = "2025-11-25T19:00:00.000000001+02:00"
	in["datacontenttype"] = "application/json; charset=utf-8"
	d := data(in)
	d["module"] = "MY_MODULE"
	d["tenant"] = "blue"
	d["report_timestamp"] = 42
	d["obj_uuid"] = "pool-1"
	d["details_summary"] = "sum"
	d["event_description"] = "desc"
	ev := mustDecode(t, encodeJSON(t, in))
	want := Event{
		SpecVersion:     "1.0",
		ID:              "evt-1",
		Source:          "/test",
		Type:            "SERVER_DOWN",
		Subject:         "pool/web",
		Time:            time.Date(2025, 11, 25, 17, 0, 0, 1, time.UTC),
		DataContentType: "application/json; charset=utf-8",
		Data: Record{
			EventID: "SERVER_DOWN", Module: "MY_MODULE", ObjType: "pool", ObjName: "web", ObjUUID: "pool-1",
			Tenant: "blue", ReportTimestamp: 42, DetailsSummary: "sum", EventDescription: "desc",
		},
	}
	if !reflect.DeepEqual(*ev, want) {
		t.Fatalf("Decode:\n got %+v\nwant %+v", *ev, want)
	}
}

func TestDecodeTypeSuppliesEventID(t *testing.T) {
	ev := mustDecode(t, []byte(`{"specversion":"1.0","type":"USER_LOGIN","data":{"obj_type":"user","obj_name":"ann","event_details":{"user":"ann"}}}`))
	if ev.Data.EventID != "USER_LOGIN" || ev.Type != "USER_LOGIN" {
		t.Fatalf("event id %q, type %q", ev.Data.EventID, ev.Type)
	}
	if ev.Data.Module != "CONFIG" {
		t.Errorf("module = %q", ev.Data.Module)
	}
	if got := details(t, ev); got != `{"config_user_login_details":{"user":"ann"}}` {
		t.Errorf("event_details = %s", got)
	}
	checkUUIDv7(t, ev.ID)
	if ev.Source != "/test/source" || !ev.Time.Equal(testNow) || ev.Data.ReportTimestamp != testNow.Unix() {
		t.Errorf("defaults not filled: %+v", ev)
	}
	// Without data at all.
	ev = mustDecode(t, []byte(`{"specversion":"1.0","type":"CUSTOM_PING","data":null}`))
	if ev.Data.EventID != "CUSTOM_PING" || ev.Data.Module != ModuleCustom || ev.Data.Tenant != "admin" {
		t.Fatalf("record = %+v", ev.Data)
	}
}

func TestDecodeReportTimestampFollowsTime(t *testing.T) {
	ev := mustDecode(t, []byte(`{"specversion":"1.0","type":"X","time":"2030-01-02T03:04:05.9Z"}`))
	if want := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).Unix(); ev.Data.ReportTimestamp != want {
		t.Fatalf("report_timestamp = %d, want %d", ev.Data.ReportTimestamp, want)
	}
}

func TestDecodeRejects(t *testing.T) {
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	tests := []struct {
		name  string
		body  string                 // used when set
		mod   func(m map[string]any) // else applied to validCloudEvent
		field string
		msg   string // substring of the message
	}{
		// The body.
		{name: "empty body", body: ``, field: "", msg: "JSON object"},
		{name: "array", body: `[{"event_id":"X"}]`, field: "", msg: "JSON object"},
		{name: "string", body: `"X"`, field: "", msg: "JSON object"},
		{name: "null", body: `null`, field: "", msg: "JSON object"},
		{name: "syntax error", body: `{"event_id":"X",}`, field: "", msg: "invalid JSON"},
		{name: "trailing object", body: `{"event_id":"X"} {"event_id":"Y"}`, field: "", msg: "after the JSON object"},
		{name: "trailing garbage", body: `{"event_id":"X"}x`, field: "", msg: "after the JSON object"},
		{name: "neither shape", body: `{"type":"X","data":{}}`, field: "", msg: "specversion"},
		{name: "invalid UTF-8 in a key", body: "{\"event_id\":\"X\",\"obj_name\":\"a\",\"\xff\":1}", field: "\ufffd", msg: "not a field"},

		// specversion and type.
		{name: "specversion 0.3", mod: func(m map[string]any) { m["specversion"] = "0.3" }, field: "specversion"},
		{name: "specversion number", mod: func(m map[string]any) { m["specversion"] = 1.0 }, field: "specversion", msg: "string"},
		{name: "type differs", mod: func(m map[string]any) { m["type"] = "SERVER_UP" }, field: "type", msg: "differs"},
		{name: "type missing everywhere", mod: func(m map[string]any) { delete(m, "type"); delete(data(m), "event_id") }, field: "type", msg: "required"},

		// event_id.
		{name: "event_id empty", body: `{"event_id":""}`, field: "event_id", msg: "required"},
		{name: "event_id null", body: `{"event_id":null}`, field: "event_id", msg: "required"},
		{name: "event_id number", body: `{"event_id":5}`, field: "event_id", msg: "string"},
		{name: "event_id lower case", body: `{"event_id":"server_down"}`, field: "event_id", msg: "must match"},
		{name: "event_id starts with digit", body: `{"event_id":"1DOWN"}`, field: "event_id", msg: "must match"},
		{name: "event_id starts with underscore", body: `{"event_id":"_DOWN"}`, field: "event_id", msg: "must match"},
		{name: "event_id with dot", body: `{"event_id":"SERVER.DOWN"}`, field: "event_id", msg: "must match"},
		{name: "event_id too long", body: `{"event_id":"A` + long("B", MaxEventIDLength) + `"}`, field: "event_id", msg: "longer"},
		{name: "data.event_id invalid", mod: func(m map[string]any) { delete(m, "type"); data(m)["event_id"] = "bad id" }, field: "data.event_id", msg: "must match"},
		{name: "type invalid", mod: func(m map[string]any) { m["type"] = "com.example.thing"; delete(data(m), "event_id") }, field: "type", msg: "must match"},

		// id.
		{name: "id empty", mod: func(m map[string]any) { m["id"] = "" }, field: "id", msg: "empty"},
		{name: "id too long", mod: func(m map[string]any) { m["id"] = long("a", MaxIDLength+1) }, field: "id", msg: "longer"},
		{name: "id with space", mod: func(m map[string]any) { m["id"] = "a b" }, field: "id", msg: "printable ASCII"},
		{name: "id with newline", mod: func(m map[string]any) { m["id"] = "a\r\nX-Evil: 1" }, field: "id", msg: "printable ASCII"},
		{name: "id with DEL", mod: func(m map[string]any) { m["id"] = "a\x7f" }, field: "id", msg: "printable ASCII"},
		{name: "id non-ASCII", mod: func(m map[string]any) { m["id"] = "é" }, field: "id", msg: "printable ASCII"},
		{name: "id number", mod: func(m map[string]any) { m["id"] = 7 }, field: "id", msg: "string"},

		// source.
		{name: "source empty", mod: func(m map[string]any) { m["source"] = "" }, field: "source", msg: "required"},
		{name: "source too long", mod: func(m map[string]any) { m["source"] = "/" + long("s", MaxSourceLength) }, field: "source", msg: "longer"},
		{name: "source with space", mod: func(m map[string]any) { m["source"] = "/my source" }, field: "source", msg: "URI-reference"},
		{name: "source with control", mod: func(m map[string]any) { m["source"] = "/a\x01" }, field: "source", msg: "URI-reference"},
		{name: "source not a URI", mod: func(m map[string]any) { m["source"] = "/a%zz" }, field: "source", msg: "URI-reference"},

		// subject, obj_type, obj_name.
		{name: "subject differs", mod: func(m map[string]any) { m["subject"] = "pool/other" }, field: "subject", msg: "pool/web"},
		{name: "subject without objects", mod: func(m map[string]any) {
			m["subject"] = "x"
			delete(data(m), "obj_type")
			delete(data(m), "obj_name")
		}, field: "subject"},
		{name: "obj_type too long", mod: func(m map[string]any) { data(m)["obj_type"] = long("t", MaxObjLength+1) }, field: "data.obj_type", msg: "longer"},
		{name: "obj_name too long in bytes", mod: func(m map[string]any) { data(m)["obj_name"] = long("é", MaxObjLength/2+1) }, field: "data.obj_name", msg: "longer"},
		{name: "obj_name with NUL", mod: func(m map[string]any) { data(m)["obj_name"] = "a\x00b" }, field: "data.obj_name", msg: "control"},
		{name: "obj_type with newline", mod: func(m map[string]any) { data(m)["obj_type"] = "a\nb" }, field: "data.obj_type", msg: "control"},
		{name: "obj_name with C1 control", mod: func(m map[string]any) { data(m)["obj_name"] = "a\u0085b" }, field: "data.obj_name", msg: "control"},
		{name: "obj_name invalid UTF-8", body: "{\"event_id\":\"X\",\"obj_name\":\"a\xffb\"}", field: "obj_name", msg: "UTF-8"},
		{name: "obj_name number", body: `{"event_id":"X","obj_name":5}`, field: "obj_name", msg: "string"},

		// datacontenttype and data.
		{name: "datacontenttype text", mod: func(m map[string]any) { m["datacontenttype"] = "text/plain" }, field: "datacontenttype"},
		{name: "datacontenttype json suffix", mod: func(m map[string]any) { m["datacontenttype"] = "application/cloudevents+json" }, field: "datacontenttype"},
		{name: "datacontenttype malformed", mod: func(m map[string]any) { m["datacontenttype"] = "application/json;;=" }, field: "datacontenttype"},
		{name: "data_base64", mod: func(m map[string]any) { delete(m, "data"); m["data_base64"] = "e30=" }, field: "data_base64", msg: "binary data is not supported"},
		{name: "data string", mod: func(m map[string]any) { m["data"] = "SERVER_DOWN" }, field: "data", msg: "JSON object"},
		{name: "data array", mod: func(m map[string]any) { m["data"] = []any{} }, field: "data", msg: "JSON object"},
		{name: "unknown data field", mod: func(m map[string]any) { data(m)["event_detail"] = map[string]any{} }, field: "data.event_detail", msg: "not a field"},
		{name: "unknown bare field", body: `{"event_id":"X","specversionx":"abc"}`, field: "specversionx", msg: "not a field"},
		{name: "bare id not a string", body: `{"event_id":"X","id":5}`, field: "id", msg: "string"},
		{name: "record field at top level", mod: func(m map[string]any) { m["obj_name"] = "web" }, field: "obj_name", msg: "inside data"},

		// event_details.
		{name: "event_details array", mod: func(m map[string]any) { data(m)["event_details"] = []any{1} }, field: "data.event_details", msg: "JSON object"},
		{name: "event_details string", body: `{"event_id":"X","event_details":"x"}`, field: "event_details", msg: "JSON object"},
		{name: "event_details key not an object", mod: func(m map[string]any) {
			data(m)["event_details"] = map[string]any{"se_hm_pool_details": 5}
		}, field: "data.event_details.se_hm_pool_details", msg: "JSON object"},
		{name: "event_details key null", mod: func(m map[string]any) {
			data(m)["event_details"] = map[string]any{"se_hm_pool_details": nil}
		}, field: "data.event_details.se_hm_pool_details", msg: "JSON object"},
		{name: "event_details invalid UTF-8", body: "{\"event_id\":\"X\",\"event_details\":{\"a\":\"\xc3\"}}", field: "event_details", msg: "UTF-8"},

		// time and report_timestamp.
		{name: "time not RFC 3339", mod: func(m map[string]any) { m["time"] = "25 Nov 2025 17:00" }, field: "time", msg: "RFC 3339"},
		{name: "time without zone", mod: func(m map[string]any) { m["time"] = "2025-11-25T17:00:00" }, field: "time", msg: "RFC 3339"},
		{name: "time number", mod: func(m map[string]any) { m["time"] = 1764090000 }, field: "time", msg: "string"},
		{name: "time before year 0 in UTC", mod: func(m map[string]any) { m["time"] = "0000-01-01T00:00:00+01:00" }, field: "time", msg: "years"},
		{name: "time after year 9999 in UTC", mod: func(m map[string]any) { m["time"] = "9999-12-31T23:00:00-02:00" }, field: "time", msg: "years"},
		{name: "report_timestamp string", mod: func(m map[string]any) { data(m)["report_timestamp"] = "1764090000" }, field: "data.report_timestamp", msg: "integer"},
		{name: "report_timestamp fraction", body: `{"event_id":"X","report_timestamp":1764090000.5}`, field: "report_timestamp", msg: "integer"},
		{name: "report_timestamp exponent", body: `{"event_id":"X","report_timestamp":1e9}`, field: "report_timestamp", msg: "integer"},
		{name: "report_timestamp overflow", body: `{"event_id":"X","report_timestamp":99999999999999999999}`, field: "report_timestamp", msg: "integer"},

		// Extensions.
		{name: "extension upper case", mod: func(m map[string]any) { m["Trace"] = "x" }, field: "Trace", msg: "attribute name"},
		{name: "extension underscore", mod: func(m map[string]any) { m["trace_id"] = "x" }, field: "trace_id", msg: "attribute name"},
		{name: "extension too long", mod: func(m map[string]any) { m[long("x", MaxExtensionNameLength+1)] = "x" }, field: long("x", MaxExtensionNameLength+1), msg: "attribute name"},
		{name: "extension empty name", mod: func(m map[string]any) { m[""] = "x" }, field: "", msg: "attribute name"},
		{name: "extension object", mod: func(m map[string]any) { m["trace"] = map[string]any{} }, field: "trace", msg: "string, number or boolean"},
		{name: "extension array", mod: func(m map[string]any) { m["trace"] = []any{"a"} }, field: "trace", msg: "string, number or boolean"},
		{name: "extension invalid UTF-8", body: "{\"specversion\":\"1.0\",\"type\":\"X\",\"trace\":\"\xff\"}", field: "trace", msg: "UTF-8"},
		{name: "dataschema not a string", mod: func(m map[string]any) { m["dataschema"] = 5 }, field: "dataschema", msg: "string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := []byte(tt.body)
			if tt.mod != nil {
				m := validCloudEvent()
				tt.mod(m)
				b = encodeJSON(t, m)
			}
			ev, err := Decode(b, "/test/source", testNow)
			if err == nil {
				t.Fatalf("Decode(%s) = %+v, want an error on %q", b, ev, tt.field)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Decode(%s) error %v (%T) is not a *FieldError", b, err, err)
			}
			if fe.Field != tt.field || !strings.Contains(fe.Message, tt.msg) {
				t.Fatalf("Decode(%s) error field %q message %q, want field %q message containing %q", b, fe.Field, fe.Message, tt.field, tt.msg)
			}
			if ev != nil {
				t.Fatalf("Decode returned an event with an error")
			}
		})
	}
}

// TestDecodeAccepts pins the boundaries of the rules TestDecodeRejects checks.
func TestDecodeAccepts(t *testing.T) {
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	tests := []struct {
		name  string
		mod   func(m map[string]any)
		check func(t *testing.T, ev *Event)
	}{
		{"base", func(map[string]any) {}, nil},
		{"event_id at the limit", func(m map[string]any) {
			id := "A" + long("_", MaxEventIDLength-1)
			m["type"], data(m)["event_id"] = id, id
		}, nil},
		{"event_id with digits", func(m map[string]any) { m["type"], data(m)["event_id"] = "A1_2", "A1_2" }, nil},
		{"id at the limit", func(m map[string]any) { m["id"] = long("~", MaxIDLength) }, nil},
		{"id printable ASCII", func(m map[string]any) { m["id"] = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~" }, nil},
		{"source at the limit", func(m map[string]any) { m["source"] = "/" + long("s", MaxSourceLength-1) }, nil},
		{"source absolute URI", func(m map[string]any) { m["source"] = "https://example.com/hooks/a?b=c#d" }, nil},
		{"source URN", func(m map[string]any) { m["source"] = "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66" }, nil},
		{"obj_name at the limit", func(m map[string]any) { data(m)["obj_name"] = long("é", MaxObjLength/2) }, nil},
		{"obj_name with dots and spaces", func(m map[string]any) { data(m)["obj_name"] = "shop.example.com front" }, func(t *testing.T, ev *Event) {
			if got := ev.NATSSubject(); got != "vigil.events.SERVER_DOWN.pool.shop%2Eexample%2Ecom%20front" {
				t.Errorf("NATSSubject = %q", got)
			}
		}},
		{"empty obj_type and obj_name", func(m map[string]any) { data(m)["obj_type"], data(m)["obj_name"] = "", "" }, func(t *testing.T, ev *Event) {
			if ev.Subject != "" {
				t.Errorf("subject = %q", ev.Subject)
			}
		}},
		{"subject matching", func(m map[string]any) { m["subject"] = "pool/web" }, nil},
		{"datacontenttype with parameters", func(m map[string]any) { m["datacontenttype"] = "Application/JSON; charset=utf-8" }, nil},
		{"null attributes are absent", func(m map[string]any) {
			m["id"], m["source"], m["time"], m["subject"], m["datacontenttype"], m["trace"] = nil, nil, nil, nil, nil, nil
		}, func(t *testing.T, ev *Event) {
			checkUUIDv7(t, ev.ID)
			if ev.Source != "/test/source" || !ev.Time.Equal(testNow) || ev.Extensions != nil {
				t.Errorf("nulls not treated as absent: %+v", ev)
			}
		}},
		{"negative report_timestamp", func(m map[string]any) { data(m)["report_timestamp"] = -5 }, nil},
		{"time before 1970", func(m map[string]any) { m["time"] = "1960-01-01T00:00:00Z" }, func(t *testing.T, ev *Event) {
			if ev.Data.ReportTimestamp >= 0 {
				t.Errorf("report_timestamp = %d", ev.Data.ReportTimestamp)
			}
		}},
		{"extension name at the limit", func(m map[string]any) { m[long("x", MaxExtensionNameLength)] = true }, nil},
		{"dataschema string", func(m map[string]any) { m["dataschema"] = "https://example.com/schema" }, nil},
		{"extension that looks like a record field", func(m map[string]any) { m["tenant"] = "x" }, func(t *testing.T, ev *Event) {
			if ev.Extensions["tenant"] != "x" || ev.Data.Tenant != "admin" {
				t.Errorf("extensions %v, tenant %q", ev.Extensions, ev.Data.Tenant)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validCloudEvent()
			tt.mod(m)
			ev := mustDecode(t, encodeJSON(t, m))
			if tt.check != nil {
				tt.check(t, ev)
			}
			roundTrip(t, ev)
		})
	}
}

func TestDecodeWrapsDetails(t *testing.T) {
	tests := []struct {
		name, eventID, details, want string
	}{
		{"bare details wrapped", "SERVER_DOWN", `{"pool":"web"}`, `{"se_hm_pool_details":{"pool":"web"}}`},
		{"already wrapped kept", "SERVER_DOWN", `{"se_hm_pool_details":{"pool":"web"}}`, `{"se_hm_pool_details":{"pool":"web"}}`},
		{"key plus another wrapped", "SERVER_DOWN", `{"se_hm_pool_details":{"pool":"web"},"x":1}`, `{"se_hm_pool_details":{"se_hm_pool_details":{"pool":"web"},"x":1}}`},
		{"other event's key wrapped", "SERVER_DOWN", `{"se_hm_vs_details":{}}`, `{"se_hm_pool_details":{"se_hm_vs_details":{}}}`},
		{"empty object wrapped", "SCHEDULER_ACTION_FAILURE", `{}`, `{"scheduler_action_info":{}}`},
		{"whitespace compacted", "CONFIG_UPDATE", "{ \"user\" : \"ann\" ,\n \"status\": [ 1, 2 ] }", `{"config_update_details":{"status":[1,2],"user":"ann"}}`},
		{"HTML not escaped", "CONFIG_CREATE", `{"resource_name":"<a&b>"}`, `{"config_create_details":{"resource_name":"<a&b>"}}`},
		{"custom id kept", "MY_EVENT", `{"a":1,"b":{"c":2}}`, `{"a":1,"b":{"c":2}}`},
		{"custom id empty dropped", "MY_EVENT", `{}`, ``},
		{"absent stays absent", "SERVER_DOWN", `null`, ``},
		{"trigger without key kept", "SERVER_AUTOSCALE_OUT_TRIGGERED", `{"a":1}`, `{"a":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := mustDecode(t, []byte(fmt.Sprintf(`{"event_id":%q,"event_details":%s}`, tt.eventID, tt.details)))
			if got := details(t, ev); got != tt.want {
				t.Fatalf("event_details = %s, want %s", got, tt.want)
			}
			roundTrip(t, ev)
		})
	}
}

func TestExtensionsRoundTrip(t *testing.T) {
	in := validCloudEvent()
	in["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	in["partitionkey"] = "web"
	in["sequence"] = json.Number("12345678901234567890")
	in["ratio"] = json.Number("0.25")
	in["sampled"] = true
	in["dataschema"] = "https://vigil.example/schemas/server_down"
	ev := mustDecode(t, encodeJSON(t, in))
	want := map[string]any{
		"traceparent":  "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"partitionkey": "web",
		"sequence":     json.Number("12345678901234567890"),
		"ratio":        json.Number("0.25"),
		"sampled":      true,
		"dataschema":   "https://vigil.example/schemas/server_down",
	}
	if !maps.Equal(ev.Extensions, want) {
		t.Fatalf("Extensions = %v, want %v", ev.Extensions, want)
	}
	b, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"traceparent": `"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"`,
		"sequence":    `12345678901234567890`,
		"sampled":     `true`,
	} {
		if string(top[k]) != v {
			t.Errorf("top-level %s = %s, want %s", k, top[k], v)
		}
	}
	roundTrip(t, ev)
}

// roundTrip checks that ev survives Marshal → Decode and Marshal →
// json.Unmarshal unchanged, and that Marshal is stable.
func roundTrip(t *testing.T, ev *Event) {
	t.Helper()
	b, err := ev.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	ev2, err := Decode(b, "/elsewhere", testNow.Add(time.Hour))
	if err != nil {
		t.Fatalf("Decode(Marshal()) of %s: %v", b, err)
	}
	if !reflect.DeepEqual(ev, ev2) {
		t.Fatalf("round trip changed the event:\n got %+v\nwant %+v\njson %s", *ev2, *ev, b)
	}
	b2, err := ev2.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, b2) {
		t.Fatalf("Marshal is not stable:\n%s\n%s", b, b2)
	}
	var ev3 Event
	if err := json.Unmarshal(b, &ev3); err != nil {
		t.Fatalf("json.Unmarshal: %v", err)
	}
	if !reflect.DeepEqual(*ev, ev3) {
		t.Fatalf("json.Unmarshal differs:\n got %+v\nwant %+v", ev3, *ev)
	}
}

func TestMarshalCanonical(t *testing.T) {
	ev := &Event{
		SpecVersion: "1.0", ID: "id-1", Source: "/s", Type: "CONFIG_CREATE", Subject: "pool/a<b",
		Time:            time.Date(2025, 11, 25, 18, 0, 0, 500, time.FixedZone("X", 3600)),
		DataContentType: "application/json",
		Extensions:      map[string]any{"zeta": 1, "alpha": "a&b"},
		Data: Record{
			EventID: "CONFIG_CREATE", Module: "CONFIG", ObjType: "pool", ObjName: "a<b", Tenant: "admin",
			ReportTimestamp: 1764090000,
			EventDetails:    map[string]json.RawMessage{"config_create_details": json.RawMessage(`{"user":"<ann>"}`)},
		},
	}
	b, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"specversion":"1.0","id":"id-1","source":"/s","type":"CONFIG_CREATE","subject":"pool/a<b",` +
		`"time":"2025-11-25T17:00:00.0000005Z","datacontenttype":"application/json","alpha":"a&b","zeta":1,` +
		`"data":{"event_id":"CONFIG_CREATE","module":"CONFIG","obj_type":"pool","obj_name":"a<b","tenant":"admin",` +
		`"report_timestamp":1764090000,"event_details":{"config_create_details":{"user":"<ann>"}}}}`
	if string(b) != want {
		t.Fatalf("Marshal =\n%s\nwant\n%s", b, want)
	}
	// json.Marshal goes through MarshalJSON too, for values and pointers.
	for _, v := range []any{ev, *ev} {
		jb, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var back Event
		if err := json.Unmarshal(jb, &back); err != nil {
			t.Fatal(err)
		}
		if back.Extensions["alpha"] != "a&b" || back.Data.ObjName != "a<b" {
			t.Fatalf("json.Marshal(%T) lost values: %s", v, jb)
		}
	}
}

func TestMarshalRejectsBadExtensions(t *testing.T) {
	for name, ext := range map[string]map[string]any{
		"reserved name": {"id": "x"},
		"data name":     {"data": "x"},
		"bad name":      {"Trace": "x"},
		"object value":  {"trace": map[string]any{}},
		"nil value":     {"trace": nil},
	} {
		t.Run(name, func(t *testing.T) {
			ev := &Event{SpecVersion: "1.0", ID: "a", Source: "/s", Type: "X", Data: Record{EventID: "X"}, Extensions: ext}
			if b, err := ev.Marshal(); err == nil {
				t.Fatalf("Marshal = %s, want an error", b)
			}
		})
	}
}

func TestUnmarshalJSONDoesNotFillDefaults(t *testing.T) {
	var ev Event
	if err := json.Unmarshal([]byte(`{"specversion":"1.0","type":"X","data":{"event_id":"X"}}`), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.ID != "" || ev.Source != "" || ev.Data.Module != "" || !ev.Time.IsZero() {
		t.Fatalf("UnmarshalJSON filled defaults: %+v", ev)
	}
	var bad Event
	err := json.Unmarshal([]byte(`{"specversion":"1.0","data":[]}`), &bad)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "data" {
		t.Fatalf("json.Unmarshal error = %v, want a FieldError on data", err)
	}
	var wrapper struct{ E *Event }
	if err := json.Unmarshal([]byte(`{"E":null}`), &wrapper); err != nil || wrapper.E != nil {
		t.Fatalf("null event: %v %v", err, wrapper.E)
	}
}

func TestNew(t *testing.T) {
	type hmDetails struct {
		Pool   string `json:"pool"`
		Reason string `json:"reason,omitempty"`
	}
	ev, err := New("SERVER_DOWN", "pool", "web", hmDetails{Pool: "web<1>"}, "/vigil/controller", testNow)
	if err != nil {
		t.Fatal(err)
	}
	checkUUIDv7(t, ev.ID)
	want := Event{
		SpecVersion: "1.0", ID: ev.ID, Source: "/vigil/controller", Type: "SERVER_DOWN", Subject: "pool/web",
		Time: testNow, DataContentType: "application/json",
		Data: Record{
			EventID: "SERVER_DOWN", Module: "SE_HM", ObjType: "pool", ObjName: "web", Tenant: "admin",
			ReportTimestamp: testNow.Unix(),
			EventDetails:    map[string]json.RawMessage{"se_hm_pool_details": json.RawMessage(`{"pool":"web<1>"}`)},
		},
	}
	if !reflect.DeepEqual(*ev, want) {
		t.Fatalf("New:\n got %+v\nwant %+v", *ev, want)
	}
	roundTrip(t, ev)

	// Already wrapped details are kept.
	ev, err = New("SERVER_DOWN", "pool", "web", map[string]any{"se_hm_pool_details": map[string]any{"pool": "web"}}, "/s", testNow)
	if err != nil {
		t.Fatal(err)
	}
	if got := details(t, ev); got != `{"se_hm_pool_details":{"pool":"web"}}` {
		t.Errorf("event_details = %s", got)
	}

	// Custom ids, no details.
	ev, err = New("MY_EVENT", "", "", nil, "/s", testNow)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Data.Module != ModuleCustom || ev.Data.EventDetails != nil || ev.Subject != "" {
		t.Errorf("custom event = %+v", ev)
	}
	var nilDetails *hmDetails
	if ev, err = New("SERVER_UP", "pool", "web", nilDetails, "/s", testNow); err != nil || ev.Data.EventDetails != nil {
		t.Errorf("typed nil details: %v, %v", ev, err)
	}

	// Errors.
	for _, tt := range []struct {
		name, id, objName, source string
		details                   any
		field                     string
	}{
		{"bad event id", "server_down", "web", "/s", nil, "data.event_id"},
		{"details not an object", "SERVER_DOWN", "web", "/s", []int{1}, "data.event_details"},
		{"invalid UTF-8 name", "SERVER_DOWN", "w\xffb", "/s", nil, "data.obj_name"},
		{"no source", "SERVER_DOWN", "web", "", nil, "source"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.id, "pool", tt.objName, tt.details, tt.source, testNow)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("New error = %v, want a FieldError on %s", err, tt.field)
			}
		})
	}
	if _, err := New("SERVER_DOWN", "pool", "web", func() {}, "/s", testNow); err == nil {
		t.Fatal("New with unencodable details succeeded")
	}
}

func TestFieldError(t *testing.T) {
	err := fmt.Errorf("ingest: %w", &FieldError{Field: "data.event_id", Message: "is required"})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "data.event_id" {
		t.Fatalf("errors.As failed on %v", err)
	}
	if got := fe.Error(); got != "data.event_id: is required" {
		t.Fatalf("Error() = %q", got)
	}
	if got := (&FieldError{Message: "body must be a JSON object"}).Error(); got != "body must be a JSON object" {
		t.Fatalf("Error() = %q", got)
	}
}

func TestValidEventID(t *testing.T) {
	for id, want := range map[string]bool{
		"SERVER_DOWN": true, "A": true, "A_1": true, "A__": true,
		"": false, "a": false, "_A": false, "1A": false, "A-B": false, "A B": false, "É": false,
		strings.Repeat("A", MaxEventIDLength): true, strings.Repeat("A", MaxEventIDLength+1): false,
	} {
		if got := ValidEventID(id); got != want {
			t.Errorf("ValidEventID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestLookup(t *testing.T) {
	tests := []struct{ id, module, key string }{
		{"SERVER_DOWN", "SE_HM", "se_hm_pool_details"},
		{"SERVER_UP", "SE_HM", "se_hm_pool_details"},
		{"POOL_DOWN", "SE_HM", "se_hm_pool_details"},
		{"SERVER_DOWN_HA_COMPROMISED", "SE_HM", "se_hm_pool_details"},
		{"SERVER_UP_HA_ACTIVE", "SE_HM", "se_hm_pool_details"},
		{"VS_DOWN", "SE_HM", "se_hm_vs_details"},
		{"VIP_UP", "SE_HM", "se_hm_vs_details"},
		{"CONFIG_CREATE", "CONFIG", "config_create_details"},
		{"CONFIG_UPDATE", "CONFIG", "config_update_details"},
		{"CONFIG_DELETE", "CONFIG", "config_delete_details"},
		{"CONFIG_ACTION", "CONFIG", "config_action_details"},
		{"USER_LOGIN", "CONFIG", "config_user_login_details"},
		{"USER_LOGOUT", "CONFIG", "config_user_logout_details"},
		{"SE_DOWN", "SEMGR", "se_details"},
		{"SE_UP", "SEMGR", "se_details"},
		{"SERVER_AUTOSCALE_OUT", "AUTOSCALE_MGR", "server_autoscaleout_info"},
		{"SERVER_AUTOSCALE_IN", "AUTOSCALE_MGR", "server_autoscalein_info"},
		{"SERVER_AUTOSCALE_OUT_COMPLETE", "AUTOSCALE_MGR", "server_autoscaleout_complete_info"},
		{"SERVER_AUTOSCALE_IN_COMPLETE", "AUTOSCALE_MGR", "server_autoscalein_complete_info"},
		{"SERVER_AUTOSCALE_FAILED", "AUTOSCALE_MGR", "server_autoscale_failed_info"},
		{"SERVER_AUTOSCALE_OUT_TRIGGERED", "AUTOSCALE_MGR", ""},
		{"SERVER_AUTOSCALE_IN_TRIGGERED", "AUTOSCALE_MGR", ""},
		{"VS_HEALTH_CHANGE", "HSMGR", "hs_details"},
		{"POOL_HEALTH_CHANGE", "HSMGR", "hs_details"},
		{"SERVER_HEALTH_CHANGE", "HSMGR", "hs_details"},
		{"SE_HEALTH_CHANGE", "HSMGR", "hs_details"},
		{"SSL_CERT_EXPIRE", "CONFIG", "ssl_expire_details"},
		{"SSL_CERT_RENEW", "CONFIG", "ssl_renew_details"},
		{"SSL_CERT_RENEW_FAILED", "CONFIG", "ssl_renew_failed_details"},
		{"DOS_ATTACK", "METRICSMGR", "dos_attack_event_details"},
		{"METRIC_THRESHOLD_UP_VIOLATION", "METRICSMGR", "metric_threshold_up_details"},
		{"ANOMALY", "METRICSMGR", "anomaly_details"},
		{"SCHEDULER_ACTION_SUCCESS", "CONFIG", "scheduler_action_info"},
		{"SCHEDULER_ACTION_FAILURE", "CONFIG", "scheduler_action_info"},
		{"LICENSE_EXPIRY", "LICENSE_MGR", "license_expiry_details"},
		{"CONTROLSCRIPT_SUCCEEDED", ModuleRunner, "controlscript_details"},
		{"CONTROLSCRIPT_FAILED", ModuleRunner, "controlscript_details"},
		{"DATASCRIPT_ERROR", ModuleDataPlane, "datascript_error_details"},
		{"WEBHOOK_RECEIVED", ModuleSources, "webhook_received_details"},
	}
	for _, tt := range tests {
		in, ok := Lookup(tt.id)
		if !ok {
			t.Errorf("Lookup(%s): not found", tt.id)
			continue
		}
		if in.ID != tt.id || in.Module != tt.module || in.DetailsKey != tt.key {
			t.Errorf("Lookup(%s) = %+v, want module %s, details key %q", tt.id, in, tt.module, tt.key)
		}
		if ModuleOf(tt.id) != tt.module {
			t.Errorf("ModuleOf(%s) = %s", tt.id, ModuleOf(tt.id))
		}
	}
	for _, id := range []string{"CART_ABANDONED", "server_down", ""} {
		if in, ok := Lookup(id); ok {
			t.Errorf("Lookup(%q) = %+v, want not found", id, in)
		}
		if ModuleOf(id) != ModuleCustom {
			t.Errorf("ModuleOf(%q) = %s, want %s", id, ModuleOf(id), ModuleCustom)
		}
	}
}

func TestCatalogue(t *testing.T) {
	list := Catalogue()
	if !slices.IsSortedFunc(list, func(a, b Info) int { return strings.Compare(a.ID, b.ID) }) {
		t.Error("Catalogue is not sorted by ID")
	}
	if len(list) != len(catalogueByID) {
		t.Errorf("Catalogue has %d entries, the index %d", len(list), len(catalogueByID))
	}
	for _, in := range list {
		if !ValidEventID(in.ID) || in.Module == "" || in.Description == "" || strings.Contains(in.Description, "\n") {
			t.Errorf("bad entry %+v", in)
		}
		if in.DetailsKey != "" && !validDetailsKey(in.DetailsKey) {
			t.Errorf("%s: details key %q is not snake_case", in.ID, in.DetailsKey)
		}
	}
	list[0].ID = "CHANGED"
	if Catalogue()[0].ID == "CHANGED" {
		t.Error("Catalogue returned shared storage")
	}
}

func validDetailsKey(k string) bool {
	for i := 0; i < len(k); i++ {
		lower, digit := 'a' <= k[i] && k[i] <= 'z', '0' <= k[i] && k[i] <= '9'
		if !lower && k[i] != '_' && (i == 0 || !digit) {
			return false
		}
	}
	return k != ""
}

func TestBuildCataloguePanics(t *testing.T) {
	for name, list := range map[string][]Info{
		"duplicate":  {{"A", "M", "", "d"}, {"A", "M", "", "d"}},
		"invalid id": {{"a", "M", "", "d"}},
		"no module":  {{"A", "", "", "d"}},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			buildCatalogue(list)
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	body := []byte(designExample)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(body, "/bench", testNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshal(b *testing.B) {
	ev, err := Decode([]byte(designExample), "/bench", testNow)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ev.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDecodeBareRecordID(t *testing.T) {
	ev, err := Decode([]byte(`{"event_id":"X","id":"given-1","obj_type":"pool","obj_name":"web"}`), "/s", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID != "given-1" {
		t.Fatalf("id %q, want the given one", ev.ID)
	}
	if _, err := Decode([]byte(`{"event_id":"X","id":"has space"}`), "/s", time.Now()); err == nil {
		t.Fatal("invalid bare id accepted")
	}
}
