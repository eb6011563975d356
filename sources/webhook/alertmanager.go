package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// AlertmanagerMessage is the body of an Alertmanager webhook, version 4.
// Unknown fields are ignored.
type AlertmanagerMessage struct {
	Version           string              `json:"version"`
	GroupKey          string              `json:"groupKey"`
	TruncatedAlerts   int                 `json:"truncatedAlerts"`
	Status            string              `json:"status"`
	Receiver          string              `json:"receiver"`
	GroupLabels       map[string]string   `json:"groupLabels"`
	CommonLabels      map[string]string   `json:"commonLabels"`
	CommonAnnotations map[string]string   `json:"commonAnnotations"`
	ExternalURL       string              `json:"externalURL"`
	Alerts            []json.RawMessage   `json:"alerts"`
	alerts            []AlertmanagerAlert // decoded Alerts
}

// AlertmanagerAlert is one alert of a message.
type AlertmanagerAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     string            `json:"startsAt"`
	EndsAt       string            `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// DedupKey is what names one notification of an alert: its fingerprint,
// status, startsAt and endsAt.
func (a *AlertmanagerAlert) DedupKey() []string {
	return []string{"am", a.Fingerprint, a.Status, a.StartsAt, a.EndsAt}
}

// ParseAlertmanager decodes and checks a version 4 payload; errors name
// the offending field ("alerts[1].status").
func ParseAlertmanager(body []byte) (*AlertmanagerMessage, error) {
	if !utf8.Valid(body) {
		return nil, badRequest("body", "is not valid UTF-8")
	}
	var m AlertmanagerMessage
	if err := json.Unmarshal(body, &m); err != nil {
		if _, err := parseJSON(body, "body"); err != nil {
			return nil, err
		}
		return nil, badRequest("body", "is not an Alertmanager webhook payload: %v", err)
	}
	if m.Version != "4" {
		return nil, badRequest("version", "must be \"4\" (the Alertmanager webhook payload version), got %q", clip(m.Version))
	}
	m.alerts = make([]AlertmanagerAlert, len(m.Alerts))
	for i, raw := range m.Alerts {
		f := fmt.Sprintf("alerts[%d]", i)
		a := &m.alerts[i]
		if err := json.Unmarshal(raw, a); err != nil {
			return nil, badRequest(f, "is not an alert: %v", err)
		}
		if a.Status != "firing" && a.Status != "resolved" {
			return nil, badRequest(f+".status", "must be firing or resolved, got %q", clip(a.Status))
		}
		if a.Fingerprint == "" {
			return nil, badRequest(f+".fingerprint", "is required")
		}
		for _, ts := range []struct{ name, v string }{{"startsAt", a.StartsAt}, {"endsAt", a.EndsAt}} {
			if _, err := time.Parse(time.RFC3339Nano, ts.v); err != nil {
				return nil, badRequest(f+"."+ts.name, "must be an RFC 3339 time, got %q", clip(ts.v))
			}
		}
	}
	return &m, nil
}

// Alert returns the i-th decoded alert.
func (m *AlertmanagerMessage) Alert(i int) *AlertmanagerAlert { return &m.alerts[i] }

// alertPayload is what an alert's event keeps as its payload.
type alertPayload struct {
	Alert       json.RawMessage   `json:"alert"`
	Receiver    string            `json:"receiver,omitempty"`
	GroupKey    string            `json:"groupKey,omitempty"`
	GroupLabels map[string]string `json:"groupLabels,omitempty"`
	ExternalURL string            `json:"externalURL,omitempty"`
}

// decodeAlertmanager gives one event per alert: ALERTMANAGER_FIRING or
// ALERTMANAGER_RESOLVED (or <label value>_FIRING / _RESOLVED), object
// "alert" named by the alertname label unless the spec maps it; the
// dedup key hashes the fingerprint, status, startsAt and endsAt.
func (rc *receiver) decodeAlertmanager(d *delivery) ([]item, error) {
	if err := wantJSON(d); err != nil {
		return nil, err
	}
	m, err := ParseAlertmanager(d.body)
	if err != nil {
		return nil, err
	}
	items := make([]item, 0, len(m.alerts))
	for i := range m.alerts {
		a := &m.alerts[i]
		suffix := "FIRING"
		if a.Status == "resolved" {
			suffix = "RESOLVED"
		}
		def := "ALERTMANAGER_" + suffix
		if l := rc.spec.EventIDLabel; l != "" {
			if v := a.Labels[l]; v != "" {
				def = toEventID(v) + "_" + suffix
			}
		}
		var alert any
		if rc.m.objType != nil || rc.m.objName != nil || rc.m.eventID != nil {
			if err := json.Unmarshal(m.Alerts[i], &alert); err != nil {
				return nil, badRequest(fmt.Sprintf("alerts[%d]", i), "%v", err)
			}
		}
		id, typ, name, err := rc.object(alert, d.h, def, "alert", a.Labels["alertname"])
		if err != nil {
			return nil, err
		}
		payload, err := json.Marshal(alertPayload{Alert: m.Alerts[i], Receiver: m.Receiver, GroupKey: m.GroupKey, GroupLabels: m.GroupLabels, ExternalURL: m.ExternalURL})
		if err != nil {
			return nil, fmt.Errorf("encode alert %d: %w", i, err)
		}
		key := a.DedupKey()
		it, err := rc.event(id, typ, name, a.Fingerprint, joinKey(key), payload, d.now)
		if err != nil {
			var re *requestError
			if errors.As(err, &re) {
				re.field = fmt.Sprintf("alerts[%d].%s", i, re.field)
			}
			return nil, err
		}
		items = append(items, it)
	}
	if len(items) == 0 {
		return nil, nil
	}
	return items, nil
}

func joinKey(parts []string) string {
	b := make([]byte, 0, 128)
	for i, p := range parts {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, p...)
	}
	return string(b)
}
