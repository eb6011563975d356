package actions

import (
	"encoding/json"
	"testing"
)

func TestActionGroupAccepts(t *testing.T) {
	for name, spec := range map[string]string{
		"script": `{"controlscript": "scale-out"}`,
		"all": `{"level": "medium", "controlscript": "scale-out", "on_resolve": true, "autoscale": true,
			"webhooks": [{"url": "https://hooks.example.com/a", "method": "PUT", "headers": {"X-Team": "ops"}, "body": "{\"text\": {{json .Summary}}, \"n\": {{len .Alert.Events}}}", "secret": {"name": "hook", "key": "whsec"}, "timeout": "5s"}],
			"slack": {"url_secret": {"name": "slack", "key": "url"}, "text": "*{{.Alert.Level}}* {{.Summary}}"},
			"syslog": [{"address": "127.0.0.1:514"}, {"address": "logs.example.com:6514", "protocol": "tls", "facility": "local3", "app_name": "vigil-ha", "message": "{{.Config}} {{.State}}"}],
			"email": {"server": "smtp.example.com:587", "from": "vigil <vigil@example.com>", "to": ["ops@example.com"], "subject": "[{{.State}}] {{.Summary}}", "username": "vigil", "password": {"name": "smtp", "key": "password"}},
			"publish_event": {"event_id": "WEB_ESCALATED", "details": "{\"escalated\": {\"alert\": {{json .ID}}}}"},
			"retry": {"tries": 8, "backoff": "500ms", "max_backoff": "2m"}}`,
	} {
		if _, err := DecodeActionGroup(json.RawMessage(spec)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestActionGroupRefuses(t *testing.T) {
	for _, c := range []struct{ name, spec, field, msg string }{
		{"nothing", `{}`, "spec", "no action"},
		{"level", `{"controlscript": "x", "level": "urgent"}`, "spec.level", "low, medium or high"},
		{"script name", `{"controlscript": "Bad Name"}`, "spec.controlscript", ""},
		{"url scheme", `{"webhooks": [{"url": "ftp://x/y"}]}`, "spec.webhooks[0].url", "http or https"},
		{"url host", `{"webhooks": [{"url": "https:///path"}]}`, "spec.webhooks[0].url", "no host"},
		{"method", `{"webhooks": [{"url": "https://x", "method": "TRACE"}]}`, "spec.webhooks[0].method", "POST"},
		{"header name", `{"webhooks": [{"url": "https://x", "headers": {"Bad Header": "v"}}]}`, "spec.webhooks[0].headers", "not a header name"},
		{"header crlf", `{"webhooks": [{"url": "https://x", "headers": {"X-A": "a\r\nX-B: b"}}]}`, "spec.webhooks[0].headers.X-A", "line break"},
		{"header reserved", `{"webhooks": [{"url": "https://x", "headers": {"webhook-signature": "v1,x"}}]}`, "spec.webhooks[0].headers.webhook-signature", "set by vigil"},
		{"body template", `{"webhooks": [{"url": "https://x", "body": "{{.Alert.Pool}}"}]}`, "spec.webhooks[0].body", "can't evaluate field Pool"},
		{"body func", `{"webhooks": [{"url": "https://x", "body": "{{yaml .}}"}]}`, "spec.webhooks[0].body", "function \"yaml\" not defined"},
		{"secret ref", `{"webhooks": [{"url": "https://x", "secret": {"name": "hook"}}]}`, "spec.webhooks[0].secret.key", "required"},
		{"timeout", `{"webhooks": [{"url": "https://x", "timeout": "10m"}]}`, "spec.webhooks[0].timeout", "1s to 5m"},
		{"slack both", `{"slack": {"url": "https://hooks.slack.com/x", "url_secret": {"name": "s", "key": "u"}}}`, "spec.slack", "exactly one"},
		{"syslog address", `{"syslog": [{"address": "logs.example.com"}]}`, "spec.syslog[0].address", "host:port"},
		{"syslog port", `{"syslog": [{"address": "logs:70000"}]}`, "spec.syslog[0].address", "1 to 65535"},
		{"syslog protocol", `{"syslog": [{"address": "l:514", "protocol": "relp"}]}`, "spec.syslog[0].protocol", "udp, tcp or tls"},
		{"syslog facility", `{"syslog": [{"address": "l:514", "facility": "local9"}]}`, "spec.syslog[0].facility", "unknown facility"},
		{"syslog app", `{"syslog": [{"address": "l:514", "app_name": "has space"}]}`, "spec.syslog[0].app_name", "RFC 5424"},
		{"email from", `{"email": {"server": "s:25", "from": "not an address", "to": ["a@b.c"]}}`, "spec.email.from", ""},
		{"email to", `{"email": {"server": "s:25", "from": "a@b.c", "to": []}}`, "spec.email.to", "at least one"},
		{"email to bad", `{"email": {"server": "s:25", "from": "a@b.c", "to": ["x@y.z", "nope"]}}`, "spec.email.to[1]", ""},
		{"email auth", `{"email": {"server": "s:25", "from": "a@b.c", "to": ["x@y.z"], "username": "u"}}`, "spec.email.password", "go together"},
		{"email clear", `{"email": {"server": "s:25", "from": "a@b.c", "to": ["x@y.z"], "username": "u", "password": {"name": "p", "key": "k"}, "starttls": false}}`, "spec.email.starttls", "in clear"},
		{"event id", `{"publish_event": {"event_id": "web-escalated"}}`, "spec.publish_event.event_id", "not an event id"},
		{"event details", `{"publish_event": {"event_id": "WEB_X", "details": "[1]"}}`, "spec.publish_event.details", "JSON object"},
		{"tries", `{"controlscript": "x", "retry": {"tries": 50}}`, "spec.retry.tries", "1 to 20"},
		{"backoff", `{"controlscript": "x", "retry": {"backoff": "10ms"}}`, "spec.retry.backoff", "100ms to 1m"},
		{"max backoff", `{"controlscript": "x", "retry": {"backoff": "10s", "max_backoff": "5s"}}`, "spec.retry.max_backoff", "from the backoff"},
	} {
		assertRefused(t, c.name, c.field, c.msg, func() error {
			_, err := DecodeActionGroup(json.RawMessage(c.spec))
			return err
		})
	}
}

// TestDefaultBodyIsTheNotice: the documented default body, {{json .}},
// renders the notice with the alert in Avi's shape.
func TestDefaultBodyIsTheNotice(t *testing.T) {
	_, out, err := parseTemplate("body", "{{json .}}")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		ID    string `json:"id"`
		State string `json:"state"`
		Alert struct {
			Level  string `json:"level"`
			Events []struct {
				EventID string `json:"event_id"`
			} `json:"events"`
		} `json:"alert"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got.ID != "alert-1" || got.State != "ON" || got.Alert.Level != "ALERT_HIGH" || len(got.Alert.Events) != 1 || got.Alert.Events[0].EventID != "SERVER_DOWN" {
		t.Errorf("default body: %s", out)
	}
}

func TestSilenceRefuses(t *testing.T) {
	ends := `"ends": "2030-01-01T00:00:00Z"`
	for _, c := range []struct{ name, spec, field, msg string }{
		{"no matchers", `{` + ends + `, "comment": "x"}`, "spec.matchers", "every action"},
		{"no comment", `{"matchers": [{"field": "obj_name", "value": "web"}], ` + ends + `}`, "spec.comment", "say why"},
		{"no end", `{"matchers": [{"field": "obj_name", "value": "web"}], "comment": "x"}`, "spec.ends", "required"},
		{"ends before starts", `{"matchers": [{"field": "obj_name", "value": "web"}], "starts": "2031-01-01T00:00:00Z", ` + ends + `, "comment": "x"}`, "spec.ends", "after spec.starts"},
		{"field", `{"matchers": [{"field": "pool", "value": "web"}], ` + ends + `, "comment": "x"}`, "spec.matchers[0].field", "unknown field"},
		{"op", `{"matchers": [{"field": "obj_name", "op": "~", "value": "web"}], ` + ends + `, "comment": "x"}`, "spec.matchers[0].op", "=~"},
		{"regexp", `{"matchers": [{"field": "obj_name", "op": "=~", "value": "web-("}], ` + ends + `, "comment": "x"}`, "spec.matchers[0].value", "regular expression"},
		{"time", `{"matchers": [{"field": "obj_name", "value": "web"}], "ends": "tomorrow", "comment": "x"}`, "spec.ends", ""},
	} {
		assertRefused(t, c.name, c.field, c.msg, func() error {
			_, err := CompileSilence("s", json.RawMessage(c.spec))
			return err
		})
	}
}
