package actions

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/vigilhq/vigil/config"
)

// KindActionGroup is the kind of an ActionGroup object.
const KindActionGroup = "ActionGroup"

// MaxTargets bounds the webhooks and the syslog receivers of one
// ActionGroup.
const MaxTargets = 16

// Defaults of an ActionGroup.
const (
	DefaultWebhookTimeout = 10 * time.Second
	DefaultTries          = 5
	DefaultBackoff        = time.Second
	DefaultMaxBackoff     = 5 * time.Minute
	DefaultSyslogFacility = "user"
	DefaultSyslogAppName  = "vigil"
)

// ActionGroupSpec is the spec of an ActionGroup: what happens when an alert
// of an AlertConfig that names it is raised (and, with OnResolve, resolved).
type ActionGroupSpec struct {
	// Level is the lowest alert level the group acts on: low (the default)
	// acts on every alert, high only on high ones.
	Level string `json:"level,omitempty"`
	// ControlScript names a ControlScript run with the alert in Avi's shape
	// as sys.argv[1].
	ControlScript string `json:"controlscript,omitempty"`
	// Webhooks are HTTP requests.
	Webhooks []WebhookAction `json:"webhooks,omitempty"`
	// Slack posts to an incoming webhook.
	Slack *SlackAction `json:"slack,omitempty"`
	// Syslog sends RFC 5424 messages.
	Syslog []SyslogAction `json:"syslog,omitempty"`
	// Email sends a message over SMTP.
	Email *EmailAction `json:"email,omitempty"`
	// PublishEvent publishes a new event, chaining rules.
	PublishEvent *PublishEventAction `json:"publish_event,omitempty"`
	// Autoscale hands the alert to the autoscale manager.
	Autoscale bool `json:"autoscale,omitempty"`
	// OnResolve runs the actions when the alert resolves too.
	OnResolve bool `json:"on_resolve,omitempty"`
	// Retry bounds the tries of each action.
	Retry *ActionRetry `json:"retry,omitempty"`
}

// SecretRef names one key of a Secret object.
type SecretRef struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// WebhookAction is one HTTP request per alert.
type WebhookAction struct {
	// URL is an absolute http or https URL.
	URL string `json:"url"`
	// Method is POST (the default), PUT, PATCH, GET or DELETE.
	Method string `json:"method,omitempty"`
	// Headers are sent as given; Content-Type defaults to
	// application/json.
	Headers map[string]string `json:"headers,omitempty"`
	// Body is a Go template over the Notice; default `{{json .}}`.
	Body string `json:"body,omitempty"`
	// Secret, a Standard Webhooks key ("whsec_..."), signs each request
	// (webhook-id, webhook-timestamp, webhook-signature).
	Secret *SecretRef `json:"secret,omitempty"`
	// Timeout bounds one try; default 10s.
	Timeout config.Duration `json:"timeout,omitempty"`
}

// SlackAction posts to a Slack incoming webhook.
type SlackAction struct {
	// URL is the incoming webhook URL, or URLSecret names where it is kept.
	URL       string     `json:"url,omitempty"`
	URLSecret *SecretRef `json:"url_secret,omitempty"`
	// Text is a Go template over the Notice; default the summary.
	Text string `json:"text,omitempty"`
}

// SyslogAction sends one RFC 5424 message per alert.
type SyslogAction struct {
	// Address is host:port.
	Address string `json:"address"`
	// Protocol is udp (the default), tcp or tls (octet-counted framing,
	// RFC 6587 and RFC 5425).
	Protocol string `json:"protocol,omitempty"`
	// Facility is a name: kern, user (the default), daemon, auth, local0-7, ...
	Facility string `json:"facility,omitempty"`
	// AppName is the APP-NAME field; default vigil.
	AppName string `json:"app_name,omitempty"`
	// Message is a Go template over the Notice; default the summary.
	Message string `json:"message,omitempty"`
}

// EmailAction sends one message per alert.
type EmailAction struct {
	// Server is the SMTP server's host:port.
	Server string `json:"server"`
	// From and To are addresses ("Name <a@b>" or "a@b").
	From string   `json:"from"`
	To   []string `json:"to"`
	// Subject and Body are Go templates over the Notice.
	Subject string `json:"subject,omitempty"`
	Body    string `json:"body,omitempty"`
	// Username and Password authenticate (PLAIN, only over TLS).
	Username string     `json:"username,omitempty"`
	Password *SecretRef `json:"password,omitempty"`
	// StartTLS is required unless false; default true.
	StartTLS *bool `json:"starttls,omitempty"`
}

// PublishEventAction publishes an event per alert.
type PublishEventAction struct {
	// EventID is the new event's id.
	EventID string `json:"event_id"`
	// Details is a Go template over the Notice that renders a JSON object,
	// the event's event_details.
	Details string `json:"details,omitempty"`
}

// ActionRetry bounds the tries of each action: capped exponential backoff
// with jitter, then the dead-letter stream.
type ActionRetry struct {
	// Tries in all, first included; default 5.
	Tries int `json:"tries,omitempty"`
	// Backoff is the first wait, doubled each time up to MaxBackoff;
	// defaults 1s and 5m.
	Backoff    config.Duration `json:"backoff,omitempty"`
	MaxBackoff config.Duration `json:"max_backoff,omitempty"`
}

// AviAlert is an alert in Avi's shape: what a ControlScript gets as
// sys.argv[1].
type AviAlert struct {
	Name          string          `json:"name"`
	Level         string          `json:"level"`  // ALERT_LOW, ALERT_MEDIUM or ALERT_HIGH
	Reason        string          `json:"reason"` // e.g. threshold_exceeded
	ObjName       string          `json:"obj_name"`
	ObjUUID       string          `json:"obj_uuid"`
	Threshold     int             `json:"threshold"`
	ThrottleCount int             `json:"throttle_count"`
	Events        []AviAlertEvent `json:"events"`
}

// AviAlertEvent is one event of an AviAlert.
type AviAlertEvent struct {
	EventID         string                     `json:"event_id"`
	ObjUUID         string                     `json:"obj_uuid"`
	ObjName         string                     `json:"obj_name"`
	ReportTimestamp int64                      `json:"report_timestamp"`
	EventDetails    map[string]json.RawMessage `json:"event_details,omitempty"`
}

// Notice is what action templates see, and the default webhook body.
type Notice struct {
	// ID is the alert's id; Key the action's idempotency key.
	ID  string `json:"id"`
	Key string `json:"key"`
	// Config names the AlertConfig, State is ON or RESOLVED.
	Config  string    `json:"config"`
	State   string    `json:"state"`
	Summary string    `json:"summary"`
	Time    time.Time `json:"time"`
	Alert   AviAlert  `json:"alert"`
}

// templateFuncs are the functions action templates may call.
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
}

// sampleNotice is what templates run on when they are checked.
var sampleNotice = Notice{
	ID: "alert-1", Key: "alert-1.webhook-0.1", Config: "web-down", State: "ON", Summary: "pool web: 3 x SERVER_DOWN",
	Time: time.Unix(1700000000, 0).UTC(),
	Alert: AviAlert{
		Name: "web-down-pool-web", Level: "ALERT_HIGH", Reason: "threshold_exceeded", ObjName: "web", ObjUUID: "pool-1",
		Threshold: 3, Events: []AviAlertEvent{{EventID: "SERVER_DOWN", ObjName: "web", ObjUUID: "pool-1", ReportTimestamp: 1700000000}},
	},
}

// parseTemplate parses text as an action template and runs it on a sample
// notice, so that a misspelt field is refused when applied.
func parseTemplate(name, text string) (*template.Template, string, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(templateFuncs).Parse(text)
	if err != nil {
		return nil, "", err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, sampleNotice); err != nil {
		return nil, "", err
	}
	return t, b.String(), nil
}

// DecodeActionGroup decodes and checks an ActionGroup spec.
func DecodeActionGroup(spec json.RawMessage) (*ActionGroupSpec, error) {
	var s ActionGroupSpec
	if err := config.DecodeSpec(spec, &s); err != nil {
		return nil, err
	}
	return &s, checkActionGroup(&s)
}

var syslogFacilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7, "uucp": 8,
	"cron": 9, "authpriv": 10, "ftp": 11, "local0": 16, "local1": 17, "local2": 18, "local3": 19,
	"local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

func checkActionGroup(s *ActionGroupSpec) error {
	if s.ControlScript == "" && len(s.Webhooks) == 0 && s.Slack == nil && len(s.Syslog) == 0 &&
		s.Email == nil && s.PublishEvent == nil && !s.Autoscale {
		return config.Errorf("spec", "has no action: set controlscript, webhooks, slack, syslog, email, publish_event or autoscale")
	}
	if err := checkLevel(s.Level); err != nil {
		return err
	}
	if s.ControlScript != "" {
		if err := config.ValidateName(s.ControlScript); err != nil {
			return config.Errorf("spec.controlscript", "%v", err)
		}
	}
	if len(s.Webhooks) > MaxTargets {
		return config.Errorf("spec.webhooks", "at most %d, got %d", MaxTargets, len(s.Webhooks))
	}
	if len(s.Syslog) > MaxTargets {
		return config.Errorf("spec.syslog", "at most %d, got %d", MaxTargets, len(s.Syslog))
	}
	for i, w := range s.Webhooks {
		if err := checkWebhook(fmt.Sprintf("spec.webhooks[%d]", i), w); err != nil {
			return err
		}
	}
	if sl := s.Slack; sl != nil {
		switch {
		case (sl.URL == "") == (sl.URLSecret == nil):
			return config.Errorf("spec.slack", "needs exactly one of url and url_secret")
		case sl.URL != "":
			if err := checkURL(sl.URL); err != nil {
				return config.Errorf("spec.slack.url", "%v", err)
			}
		default:
			if err := checkSecretRef("spec.slack.url_secret", *sl.URLSecret); err != nil {
				return err
			}
		}
		if err := checkTemplate("spec.slack.text", sl.Text); err != nil {
			return err
		}
	}
	for i, sy := range s.Syslog {
		f := fmt.Sprintf("spec.syslog[%d]", i)
		if err := checkHostPort(sy.Address); err != nil {
			return config.Errorf(f+".address", "%v", err)
		}
		switch sy.Protocol {
		case "", "udp", "tcp", "tls":
		default:
			return config.Errorf(f+".protocol", "must be udp, tcp or tls, got %q", sy.Protocol)
		}
		if _, ok := syslogFacilities[sy.Facility]; sy.Facility != "" && !ok {
			return config.Errorf(f+".facility", "unknown facility %q (kern, user, daemon, auth, local0-local7, ...)", sy.Facility)
		}
		if len(sy.AppName) > 48 || strings.ContainsFunc(sy.AppName, func(r rune) bool { return r < 33 || r > 126 }) {
			return config.Errorf(f+".app_name", "must be at most 48 printable ASCII characters without spaces (RFC 5424 APP-NAME)")
		}
		if err := checkTemplate(f+".message", sy.Message); err != nil {
			return err
		}
	}
	if e := s.Email; e != nil {
		if err := checkEmail(*e); err != nil {
			return err
		}
	}
	if p := s.PublishEvent; p != nil {
		if !eventIDRE.MatchString(p.EventID) {
			return config.Errorf("spec.publish_event.event_id", "%q is not an event id (A-Z, 0-9 and _, starting with a letter)", p.EventID)
		}
		if p.Details != "" {
			_, out, err := parseTemplate("details", p.Details)
			if err != nil {
				return config.Errorf("spec.publish_event.details", "%v", err)
			}
			var obj map[string]json.RawMessage
			if err := json.Unmarshal([]byte(out), &obj); err != nil {
				return config.Errorf("spec.publish_event.details", "must render a JSON object; on a sample alert it gave %q", out)
			}
		}
	}
	if r := s.Retry; r != nil {
		switch {
		case r.Tries < 0 || r.Tries > 20:
			return config.Errorf("spec.retry.tries", "must be from 1 to 20, got %d", r.Tries)
		case r.Backoff.D() != 0 && (r.Backoff.D() < 100*time.Millisecond || r.Backoff.D() > time.Minute):
			return config.Errorf("spec.retry.backoff", "must be from 100ms to 1m, got %s", r.Backoff.D())
		case r.MaxBackoff.D() != 0 && (r.MaxBackoff.D() < r.Backoff.D() || r.MaxBackoff.D() > time.Hour):
			return config.Errorf("spec.retry.max_backoff", "must be from the backoff to 1h, got %s", r.MaxBackoff.D())
		}
	}
	return nil
}

func checkWebhook(f string, w WebhookAction) error {
	if err := checkURL(w.URL); err != nil {
		return config.Errorf(f+".url", "%v", err)
	}
	switch w.Method {
	case "", http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodGet, http.MethodDelete:
	default:
		return config.Errorf(f+".method", "must be POST, PUT, PATCH, GET or DELETE, got %q", w.Method)
	}
	for k, v := range w.Headers {
		switch {
		case !validHeaderName(k):
			return config.Errorf(f+".headers", "%q is not a header name", k)
		case strings.ContainsAny(v, "\r\n"):
			return config.Errorf(f+".headers."+k, "must not contain a line break")
		}
		switch http.CanonicalHeaderKey(k) {
		case "Host", "Content-Length", "Transfer-Encoding", "Connection", "Webhook-Id", "Webhook-Timestamp", "Webhook-Signature":
			return config.Errorf(f+".headers."+k, "is set by vigil")
		}
	}
	if err := checkTemplate(f+".body", w.Body); err != nil {
		return err
	}
	if w.Secret != nil {
		if err := checkSecretRef(f+".secret", *w.Secret); err != nil {
			return err
		}
	}
	if d := w.Timeout.D(); d != 0 && (d < time.Second || d > 5*time.Minute) {
		return config.Errorf(f+".timeout", "must be from 1s to 5m, got %s", d)
	}
	return nil
}

func checkEmail(e EmailAction) error {
	if err := checkHostPort(e.Server); err != nil {
		return config.Errorf("spec.email.server", "%v", err)
	}
	if _, err := mail.ParseAddress(e.From); err != nil {
		return config.Errorf("spec.email.from", "%q: %v", e.From, err)
	}
	if len(e.To) == 0 {
		return config.Errorf("spec.email.to", "is required: at least one address")
	}
	for i, to := range e.To {
		if _, err := mail.ParseAddress(to); err != nil {
			return config.Errorf(fmt.Sprintf("spec.email.to[%d]", i), "%q: %v", to, err)
		}
	}
	if err := checkTemplate("spec.email.subject", e.Subject); err != nil {
		return err
	}
	if err := checkTemplate("spec.email.body", e.Body); err != nil {
		return err
	}
	if (e.Username == "") != (e.Password == nil) {
		return config.Errorf("spec.email.password", "username and password go together")
	}
	if e.Password != nil {
		if err := checkSecretRef("spec.email.password", *e.Password); err != nil {
			return err
		}
		if e.StartTLS != nil && !*e.StartTLS {
			return config.Errorf("spec.email.starttls", "cannot be false with a password: it would cross the network in clear")
		}
	}
	return nil
}

func checkTemplate(field, text string) error {
	if text == "" {
		return nil
	}
	if _, _, err := parseTemplate(field, text); err != nil {
		return config.Errorf(field, "%v", err)
	}
	return nil
}

func checkSecretRef(field string, r SecretRef) error {
	if err := config.ValidateName(r.Name); err != nil {
		return config.Errorf(field+".name", "%v", err)
	}
	if r.Key == "" {
		return config.Errorf(field+".key", "is required")
	}
	return nil
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return err
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q: want an http or https URL", raw)
	case u.Host == "":
		return fmt.Errorf("%q: no host", raw)
	}
	return nil
}

func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want host:port: %w", addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || host == "" {
		return fmt.Errorf("%q: want host:port with a port from 1 to 65535", addr)
	}
	return nil
}

// validHeaderName reports whether k is an HTTP token (RFC 9110).
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if r > 126 || r <= 32 || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

func init() {
	config.Register(config.Kind{
		Name:        KindActionGroup,
		Description: "what happens when an alert is raised: a ControlScript, webhooks, Slack, syslog, email, an event, or the autoscale manager; retried, then dead-lettered",
		Validate: func(spec json.RawMessage) error {
			_, err := DecodeActionGroup(spec)
			return err
		},
	})
}
