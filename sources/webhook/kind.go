package webhook

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/events"
)

// KindWebhookReceiver is the kind of a WebhookReceiver object.
const KindWebhookReceiver = "WebhookReceiver"

// Formats of a receiver's payload.
const (
	FormatJSON             = "json"
	FormatCloudEvents      = "cloudevents"
	FormatGitHub           = "github"
	FormatAlertmanager     = "alertmanager"
	FormatStandardWebhooks = "standard-webhooks"
)

// Defaults and bounds of a receiver.
const (
	// DefaultMaxBody bounds a request body when max_body is not set.
	DefaultMaxBody = 1 << 20
	// MaxMaxBody is the largest max_body accepted (the largest event).
	MaxMaxBody = events.MaxEventSize
	// DefaultDedupWindow is how long a delivery id is remembered.
	DefaultDedupWindow = 24 * time.Hour
	// MaxDedupWindow bounds dedup_window.
	MaxDedupWindow = 30 * 24 * time.Hour
	// DefaultTolerance is the timestamp tolerance of the signing schemes
	// that sign a timestamp (Stripe, Slack, Standard Webhooks).
	DefaultTolerance = 5 * time.Minute
	// MaxDeliveryIDLength bounds a delivery id taken from a header or the
	// body.
	MaxDeliveryIDLength = 256
)

// Spec is the spec of a WebhookReceiver.
type Spec struct {
	// Format is json, cloudevents, github, alertmanager or
	// standard-webhooks.
	Format string `json:"format"`
	// Description is free text.
	Description string `json:"description,omitempty"`

	// EventID is the event id of every event (json, standard-webhooks);
	// or EventIDPath, a dotted path into the JSON body ("data.kind"); or
	// EventIDExpr, a CEL expression over body and headers that yields a
	// string. A value read from the body is upper-cased and every
	// character outside A-Z, 0-9 and '_' becomes '_'. For json, none of
	// the three means DefaultEventID.
	EventID     string `json:"event_id,omitempty"`
	EventIDPath string `json:"event_id_path,omitempty"`
	EventIDExpr string `json:"event_id_expr,omitempty"`
	// ObjType and ObjName name the object of the events, fixed or read from
	// the body like the event id (not upper-cased). For alertmanager, paths
	// and expressions read one alert (e.g. "labels.instance").
	ObjType     string `json:"obj_type,omitempty"`
	ObjTypePath string `json:"obj_type_path,omitempty"`
	ObjTypeExpr string `json:"obj_type_expr,omitempty"`
	ObjName     string `json:"obj_name,omitempty"`
	ObjNamePath string `json:"obj_name_path,omitempty"`
	ObjNameExpr string `json:"obj_name_expr,omitempty"`
	// DeliveryIDHeader (json) names a request header, or DeliveryIDPath a
	// dotted path into the body, that holds the delivery id used to drop
	// repeated deliveries. Without either, json deliveries are not
	// de-duplicated.
	DeliveryIDHeader string `json:"delivery_id_header,omitempty"`
	DeliveryIDPath   string `json:"delivery_id_path,omitempty"`
	// EventIDLabel (alertmanager) names an alert label whose value, with
	// _FIRING or _RESOLVED appended, is the event id; without it the ids are
	// ALERTMANAGER_FIRING and ALERTMANAGER_RESOLVED.
	EventIDLabel string `json:"event_id_label,omitempty"`

	// Auth is required; write {type: none} for a receiver without one.
	Auth *AuthSpec `json:"auth"`
	// AllowIPs, when set, lists the client addresses and CIDR prefixes
	// that may post; others get 403. The address is the TCP peer's.
	AllowIPs []string `json:"allow_ips,omitempty"`
	// MaxBody bounds the request body (default 1Mi, at most 1Mi); larger
	// bodies get 413.
	MaxBody config.Quantity `json:"max_body,omitempty"`
	// RateLimit bounds requests per second to this receiver; excess
	// requests get 429 with Retry-After. Per process.
	RateLimit *RateLimitSpec `json:"rate_limit,omitempty"`
	// DedupWindow is how long a delivery id is remembered (default 24h).
	DedupWindow config.Duration `json:"dedup_window,omitempty"`
}

// RateLimitSpec is a token bucket.
type RateLimitSpec struct {
	// RPS is the sustained rate in requests per second (> 0).
	RPS float64 `json:"rps"`
	// Burst is the bucket size (default: RPS rounded up, at least 1).
	Burst int `json:"burst,omitempty"`
}

// SecretRef names one key of a Secret object.
type SecretRef struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// String returns "<name>/<key>", never a value.
func (r SecretRef) String() string { return r.Name + "/" + r.Key }

// Auth types.
const (
	AuthNone  = "none"
	AuthToken = "token"
	AuthBasic = "basic"
	AuthHMAC  = "hmac"
)

// HMAC presets.
const (
	PresetGitHub           = "github"
	PresetStripe           = "stripe"
	PresetSlack            = "slack"
	PresetStandardWebhooks = "standard-webhooks"
)

// AuthSpec says how a receiver authenticates requests.
type AuthSpec struct {
	// Type is none, token, basic or hmac.
	Type string `json:"type"`
	// Header (token) holds the token, default Authorization (where
	// "Bearer <token>" is accepted too); (hmac) holds the signature.
	Header string `json:"header,omitempty"`
	// Secret (token, hmac) is the token or the signing secret.
	Secret *SecretRef `json:"secret,omitempty"`
	// Username and Password (basic).
	Username *SecretRef `json:"username,omitempty"`
	Password *SecretRef `json:"password,omitempty"`
	// Preset (hmac) is github, stripe, slack or standard-webhooks; it sets
	// the algorithm, headers, prefix, encoding and signed content of that
	// scheme. Without a preset the signature is over the raw body, or over
	// "<timestamp>.<body>" when TimestampHeader is set.
	Preset string `json:"preset,omitempty"`
	// Algorithm (hmac) is sha256 (default), sha1 or sha512.
	Algorithm string `json:"algorithm,omitempty"`
	// Prefix (hmac) precedes the signature in the header, e.g. "sha256=".
	Prefix string `json:"prefix,omitempty"`
	// Encoding (hmac) of the signature: hex (default) or base64.
	Encoding string `json:"encoding,omitempty"`
	// TimestampHeader (hmac, no preset) holds a unix timestamp that is
	// signed with the body.
	TimestampHeader string `json:"timestamp_header,omitempty"`
	// Tolerance (hmac) is how far a signed timestamp may be from now
	// (default 5m).
	Tolerance config.Duration `json:"tolerance,omitempty"`
}

func init() {
	config.Register(config.Kind{
		Name:        KindWebhookReceiver,
		Description: "an HTTP endpoint at /hooks/<name> that turns webhook deliveries into events",
		Validate:    validate,
	})
}

func validate(spec json.RawMessage) error {
	_, err := compile("", spec)
	return err
}

// DecodeSpec decodes and checks a WebhookReceiver spec; errors are
// *config.FieldError naming the field.
func DecodeSpec(spec json.RawMessage) (*Spec, error) {
	var s Spec
	if err := config.DecodeSpec(spec, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// receiver is a compiled WebhookReceiver.
type receiver struct {
	name        string
	spec        *Spec
	source      string
	maxBody     int64
	dedupWindow time.Duration
	allow       []netip.Prefix
	limiter     *rate.Limiter
	auth        *authenticator
	m           mapping
}

// compile checks spec and builds the receiver named name.
func compile(name string, raw json.RawMessage) (*receiver, error) {
	s, err := DecodeSpec(raw)
	if err != nil {
		return nil, err
	}
	rc := &receiver{name: name, spec: s, source: "/vigil/hooks/" + name, maxBody: DefaultMaxBody, dedupWindow: DefaultDedupWindow}
	switch s.Format {
	case FormatJSON, FormatCloudEvents, FormatGitHub, FormatAlertmanager, FormatStandardWebhooks:
	case "":
		return nil, config.Errorf("spec.format", "is required: json, cloudevents, github, alertmanager or standard-webhooks")
	default:
		return nil, config.Errorf("spec.format", "unknown format %q: json, cloudevents, github, alertmanager or standard-webhooks", s.Format)
	}
	if rc.auth, err = compileAuth(s.Auth); err != nil {
		return nil, err
	}
	if rc.m, err = compileMapping(s); err != nil {
		return nil, err
	}
	for i, a := range s.AllowIPs {
		f := fmt.Sprintf("spec.allow_ips[%d]", i)
		if strings.Contains(a, "/") {
			p, err := netip.ParsePrefix(a)
			if err != nil {
				return nil, config.Errorf(f, "%q is not an address or a CIDR prefix", a)
			}
			rc.allow = append(rc.allow, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return nil, config.Errorf(f, "%q is not an address or a CIDR prefix", a)
		}
		ip = ip.Unmap()
		rc.allow = append(rc.allow, netip.PrefixFrom(ip, ip.BitLen()))
	}
	if s.MaxBody != 0 {
		if s.MaxBody < 0 || s.MaxBody > MaxMaxBody {
			return nil, config.Errorf("spec.max_body", "must be between 1 and %s", config.FormatQuantity(MaxMaxBody))
		}
		rc.maxBody = int64(s.MaxBody)
	}
	if d := s.DedupWindow.D(); d != 0 {
		if d < time.Second || d > MaxDedupWindow {
			return nil, config.Errorf("spec.dedup_window", "must be between 1s and %s", MaxDedupWindow)
		}
		rc.dedupWindow = d
	}
	if rl := s.RateLimit; rl != nil {
		if !(rl.RPS > 0) || rl.RPS > 1e6 {
			return nil, config.Errorf("spec.rate_limit.rps", "must be above 0 and at most 1000000")
		}
		burst := rl.Burst
		if burst == 0 {
			burst = max(1, int(rl.RPS+0.999999))
		}
		if burst < 1 || burst > 1e6 {
			return nil, config.Errorf("spec.rate_limit.burst", "must be between 1 and 1000000")
		}
		rc.limiter = rate.NewLimiter(rate.Limit(rl.RPS), burst)
	}
	if s.EventIDLabel != "" && s.Format != FormatAlertmanager {
		return nil, config.Errorf("spec.event_id_label", "applies to format alertmanager only")
	}
	if (s.DeliveryIDHeader != "" || s.DeliveryIDPath != "") && s.Format != FormatJSON {
		f := "spec.delivery_id_header"
		if s.DeliveryIDHeader == "" {
			f = "spec.delivery_id_path"
		}
		return nil, config.Errorf(f, "applies to format json only; format %s has its own delivery id", s.Format)
	}
	if s.DeliveryIDHeader != "" && s.DeliveryIDPath != "" {
		return nil, config.Errorf("spec.delivery_id_path", "give delivery_id_header or delivery_id_path, not both")
	}
	if s.DeliveryIDPath != "" {
		if _, err := parsePath(s.DeliveryIDPath); err != nil {
			return nil, config.Errorf("spec.delivery_id_path", "%v", err)
		}
	}
	if s.Format == FormatCloudEvents && (rc.m.eventID != nil || rc.m.objType != nil || rc.m.objName != nil) {
		return nil, config.Errorf("spec.format", "cloudevents events carry their own type and subject; remove the event_id and obj_* mappings")
	}
	if s.Format == FormatJSON && rc.m.eventID == nil {
		// Without a mapping, every delivery is a WEBHOOK_RECEIVED event.
		rc.m.eventID = &value{field: "event_id", fixed: DefaultEventID, isFixed: true}
	}
	return rc, nil
}

// allowed reports whether addr may post.
func (rc *receiver) allowed(addr netip.Addr) bool {
	if len(rc.allow) == 0 {
		return true
	}
	addr = addr.Unmap()
	for _, p := range rc.allow {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
