package actions

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/google/uuid"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/events"
	"github.com/vigilhq/vigil/runner"
)

// Scripts runs ControlScripts: what the pipeline needs from the runner.
type Scripts interface {
	Submit(ctx context.Context, req runner.RunRequest) (*runner.Execution, error)
	Get(ctx context.Context, id string) (*runner.Execution, error)
	Wait(ctx context.Context, id string) (*runner.Execution, error)
}

// Publisher stores events: what publish_event needs from the bus.
type Publisher interface {
	Publish(ctx context.Context, ev *events.Event) (events.PublishResult, error)
}

// Autoscaler is the autoscale manager, as the pipeline sees it: it takes
// an alert and says what it decided, in one line. A *Failure with
// Permanent set is a config that cannot serve the alert.
type Autoscaler interface {
	Autoscale(ctx context.Context, q *ActionRequest) (string, error)
}

// Secrets opens one key of a Secret; its errors name the Secret.
type Secrets func(ctx context.Context, ref SecretRef) (string, error)

// Failure is a failed delivery: Permanent ones are not retried (a 4xx
// other than 408 and 429, a template that fails, an SMTP 5xx), RetryAfter
// is the wait a receiver asked for (429 or 503 Retry-After).
type Failure struct {
	Err        error
	Permanent  bool
	RetryAfter time.Duration
	// Status is the HTTP status, when there was one.
	Status int
}

func (f *Failure) Error() string { return f.Err.Error() }
func (f *Failure) Unwrap() error { return f.Err }

func permanent(format string, a ...any) *Failure {
	return &Failure{Err: fmt.Errorf(format, a...), Permanent: true}
}

// Result is a delivered action.
type Result struct {
	// Execution and Output are a ControlScript's run and its output;
	// Failed is set when the script ran and did not succeed.
	Execution string
	Output    string
	Failed    string
}

// Deliverer performs actions.
type Deliverer struct {
	HTTP      *http.Client
	Scripts   Scripts
	Events    Publisher
	Autoscale Autoscaler
	Secrets   Secrets
	// TLS configures syslog over TLS and SMTP's STARTTLS; nil: the
	// system's roots.
	TLS       *tls.Config
	Now       func() time.Time
	UserAgent string
}

// Deliver performs the action q names in group g, once.
func (d *Deliverer) Deliver(ctx context.Context, q *ActionRequest, g *ActionGroupSpec) (Result, error) {
	switch q.Kind {
	case ActionControlScript:
		if g.ControlScript == "" {
			return Result{}, permanent("ActionGroup %s has no controlscript any more", q.Group)
		}
		return d.controlScript(ctx, q, g.ControlScript)
	case ActionWebhook:
		if q.Index >= len(g.Webhooks) {
			return Result{}, permanent("ActionGroup %s has no webhooks[%d] any more", q.Group, q.Index)
		}
		return Result{}, d.webhook(ctx, q, g.Webhooks[q.Index])
	case ActionSlack:
		if g.Slack == nil {
			return Result{}, permanent("ActionGroup %s has no slack any more", q.Group)
		}
		return Result{}, d.slack(ctx, q, g.Slack)
	case ActionSyslog:
		if q.Index >= len(g.Syslog) {
			return Result{}, permanent("ActionGroup %s has no syslog[%d] any more", q.Group, q.Index)
		}
		return Result{}, d.syslog(ctx, q, g.Syslog[q.Index])
	case ActionEmail:
		if g.Email == nil {
			return Result{}, permanent("ActionGroup %s has no email any more", q.Group)
		}
		return Result{}, d.email(ctx, q, g.Email)
	case ActionPublishEvent:
		if g.PublishEvent == nil {
			return Result{}, permanent("ActionGroup %s has no publish_event any more", q.Group)
		}
		return Result{}, d.publishEvent(ctx, q, g.PublishEvent)
	case ActionAutoscale:
		if !g.Autoscale {
			return Result{}, permanent("ActionGroup %s has no autoscale any more", q.Group)
		}
		if d.Autoscale == nil {
			return Result{}, errors.New("no autoscale manager in this process")
		}
		out, err := d.Autoscale.Autoscale(ctx, q)
		return Result{Output: out}, err
	}
	return Result{}, permanent("unknown action kind %q", q.Kind)
}

func render(field, text, def string, n *Notice) (string, error) {
	if text == "" {
		text = def
	}
	t, err := template.New(field).Option("missingkey=error").Funcs(templateFuncs).Parse(text)
	if err != nil {
		return "", permanent("%s: %w", field, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, n); err != nil {
		return "", permanent("%s: %w", field, err)
	}
	return b.String(), nil
}

// ExecutionID is the execution id of a ControlScript action: a UUIDv7 whose
// time is the request's and whose other bits derive from its key, so a
// repeated request names the same execution.
func ExecutionID(q *ActionRequest) string {
	u := uuid.NewSHA1(keySpace, []byte(q.Key))
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(q.Created.UnixMilli()))
	copy(u[0:6], ms[2:8])
	u[6] = u[6]&0x0f | 0x70
	return "exec-" + u.String()
}

func (d *Deliverer) controlScript(ctx context.Context, q *ActionRequest, script string) (Result, error) {
	if d.Scripts == nil {
		return Result{}, errors.New("no runner in this process")
	}
	alert, err := json.Marshal(q.Notice.Alert)
	if err != nil {
		return Result{}, permanent("alert: %w", err)
	}
	ex, err := d.Scripts.Submit(ctx, runner.RunRequest{
		ID: ExecutionID(q), Script: script, Trigger: runner.TriggerAlert, User: "alert:" + q.Config, Alert: alert,
	})
	if err != nil {
		var fe *config.FieldError
		if errors.Is(err, config.ErrNotFound) || errors.As(err, &fe) {
			// The ControlScript is missing or refuses the request: a fix
			// to the config, then a replay, is what helps.
			return Result{}, permanent("run %s: %w", script, err)
		}
		return Result{}, fmt.Errorf("run %s: %w", script, err)
	}
	ex, err = d.Scripts.Wait(ctx, ex.ID)
	if err != nil {
		return Result{Execution: ExecutionID(q)}, fmt.Errorf("wait for %s: %w", script, err)
	}
	res := Result{Execution: ex.ID}
	res.Output, res.Failed = runOutcome(ex)
	return res, nil
}

// runOutcome is what a finished run means for its action: the run's
// output, and why it failed ("" when it succeeded).
func runOutcome(ex *runner.Execution) (output, failed string) {
	if ex.Status != runner.StatusSucceeded {
		failed = ex.Status
		if ex.Reason != "" {
			failed += ": " + ex.Reason
		}
	}
	return ex.Stdout + ex.Stderr, failed
}

// SignWebhook returns the Standard Webhooks signature of a request:
// "v1," and the base64 HMAC-SHA256 of "<id>.<timestamp>.<body>" keyed
// with the secret ("whsec_" and base64).
func SignWebhook(secret, id string, ts int64, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return "", fmt.Errorf("webhook secret: not whsec_ and base64: %w", err)
	}
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.", id, ts)
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)), nil
}

func (d *Deliverer) webhook(ctx context.Context, q *ActionRequest, w WebhookAction) error {
	body, err := render("body", w.Body, "{{json .}}", &q.Notice)
	if err != nil {
		return err
	}
	timeout := w.Timeout.D()
	if timeout == 0 {
		timeout = DefaultWebhookTimeout
	}
	method := w.Method
	if method == "" {
		method = http.MethodPost
	}
	h := http.Header{}
	for k, v := range w.Headers {
		h.Set(k, v)
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	ts := d.Now().Unix()
	h.Set("Webhook-Id", q.Key)
	h.Set("Webhook-Timestamp", strconv.FormatInt(ts, 10))
	if w.Secret != nil {
		secret, err := d.Secrets(ctx, *w.Secret)
		if err != nil {
			return err
		}
		sig, err := SignWebhook(secret, q.Key, ts, []byte(body))
		if err != nil {
			return &Failure{Err: err, Permanent: true}
		}
		h.Set("Webhook-Signature", sig)
	}
	return d.post(ctx, method, w.URL, h, []byte(body), timeout)
}

func (d *Deliverer) slack(ctx context.Context, q *ActionRequest, s *SlackAction) error {
	text, err := render("text", s.Text, "{{.Summary}}", &q.Notice)
	if err != nil {
		return err
	}
	url := s.URL
	if s.URLSecret != nil {
		if url, err = d.Secrets(ctx, *s.URLSecret); err != nil {
			return err
		}
	}
	body, err := json.Marshal(map[string]string{"text": text})
	if err != nil {
		return permanent("text: %w", err)
	}
	h := http.Header{"Content-Type": {"application/json"}}
	return d.post(ctx, http.MethodPost, url, h, body, DefaultWebhookTimeout)
}

// post sends one request and classifies its answer.
func (d *Deliverer) post(ctx context.Context, method, url string, h http.Header, body []byte, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return permanent("%s %s: %w", method, url, err)
	}
	req.Header = h
	if d.UserAgent != "" {
		req.Header.Set("User-Agent", d.UserAgent)
	}
	resp, err := d.HTTP.Do(req)
	if err != nil {
		// The client's error repeats the URL, whose path may be a secret.
		var ue *neturl.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s %s: %w", method, redactURL(url), err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // keep the connection
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	f := &Failure{Status: resp.StatusCode, Err: fmt.Errorf("%s %s: %s: %s", method, redactURL(url), resp.Status, strings.TrimSpace(string(snippet)))}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		f.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), d.Now())
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500:
	default: // other 4xx, and redirects, which are not followed
		f.Permanent = true
	}
	return f
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// redactURL drops a URL's path and query, which often hold a token (a
// Slack webhook's URL is its secret).
func redactURL(raw string) string {
	i := strings.Index(raw, "://")
	if i < 0 {
		return "<url>"
	}
	if j := strings.IndexAny(raw[i+3:], "/?#"); j >= 0 {
		return raw[:i+3+j] + "/…"
	}
	return raw
}

var syslogSeverity = map[string]int{LevelHigh: 2, LevelMedium: 4, LevelLow: 5}

func (d *Deliverer) syslog(ctx context.Context, q *ActionRequest, s SyslogAction) error {
	text, err := render("message", s.Message, "{{.Summary}}", &q.Notice)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	sev, ok := syslogSeverity[levelOf(q.Notice.Alert.Level)]
	if !ok {
		sev = 5
	}
	msgID := "ALERT"
	if q.Resolve {
		sev, msgID = 6, "RESOLVED"
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultWebhookTimeout)
	defer cancel()
	return SendSyslog(ctx, s, SyslogMessage{Time: d.Now(), Hostname: host, Severity: sev, MsgID: msgID, Key: q.Key, Text: text}, d.TLS)
}

// levelOf maps Avi's level back.
func levelOf(avi string) string {
	switch avi {
	case "ALERT_HIGH":
		return LevelHigh
	case "ALERT_MEDIUM":
		return LevelMedium
	}
	return LevelLow
}

// Default email texts.
const (
	DefaultEmailSubject = "[vigil] {{.State}} {{.Summary}}"
	DefaultEmailBody    = "{{.Summary}}\n\nAlert {{.ID}} ({{.Config}}), {{.State}} at {{.Time}}.\n\n{{json .Alert}}\n"
)

func (d *Deliverer) email(ctx context.Context, q *ActionRequest, e *EmailAction) error {
	subject, err := render("subject", e.Subject, DefaultEmailSubject, &q.Notice)
	if err != nil {
		return err
	}
	body, err := render("body", e.Body, DefaultEmailBody, &q.Notice)
	if err != nil {
		return err
	}
	password := ""
	if e.Password != nil {
		if password, err = d.Secrets(ctx, *e.Password); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = SendEmail(ctx, *e, EmailMessage{Time: d.Now(), Key: q.Key, Subject: subject, Body: body}, password, d.TLS)
	if errors.Is(err, ErrPermanent) {
		return &Failure{Err: err, Permanent: true}
	}
	return err
}

func (d *Deliverer) publishEvent(ctx context.Context, q *ActionRequest, p *PublishEventAction) error {
	if d.Events == nil {
		return errors.New("no event bus in this process")
	}
	var details map[string]json.RawMessage
	if p.Details != "" {
		out, err := render("details", p.Details, "", &q.Notice)
		if err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(out), &details); err != nil {
			return permanent("details: must render a JSON object: %w", err)
		}
	}
	a := &q.Notice.Alert
	ev, err := events.New(p.EventID, q.ObjType, a.ObjName, details, "/vigil/actions/"+q.Group, d.Now())
	if err != nil {
		return permanent("event: %w", err)
	}
	// The event's id is the action's key: a repeat is a duplicate. Its
	// hop count bounds a loop of rules that publish what raises them.
	ev.ID = q.Key
	ev.Extensions = map[string]any{HopsExtension: q.Hops + 1}
	ev.Data.ObjUUID = a.ObjUUID
	if _, err := d.Events.Publish(ctx, ev); err != nil {
		return fmt.Errorf("publish %s: %w", p.EventID, err)
	}
	return nil
}
