// Package client talks to vigil's REST API (docs/api.md): objects, apply and
// delete batches, events (including the Server-Sent Events stream), tokens,
// ControlScript runs and their executions, and alerts and dead letters.
package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/config"
)

// MaxResponseSize bounds the body of one API response.
const MaxResponseSize = 64 << 20

// MaxStreamLine bounds one line of the event stream.
const MaxStreamLine = 2 << 20

// ErrStreamEnded is returned by [Client.StreamEvents] when the server closes
// the stream. Reconnecting, with the last id seen, is the caller's business.
var ErrStreamEnded = errors.New("event stream ended")

// Options configures [New].
type Options struct {
	// Addr is the API's base URL, such as "http://127.0.0.1:8480" or
	// "https://vigil.example.com"; a bare "host:port" means http.
	Addr string
	// Token is sent as "Authorization: Bearer <Token>" when set.
	Token string
	// CACert is a PEM file whose certificates are the roots trusted for
	// https, instead of the system's.
	CACert string
	// HTTPClient makes the requests; default a client with no overall
	// timeout (the event stream is long-lived; contexts bound requests).
	HTTPClient *http.Client
	// UserAgent is sent with every request; default "vigil-client".
	UserAgent string
}

// Client is a vigil API client. It is safe for concurrent use.
type Client struct {
	addr      string // the base URL, without a trailing slash
	token     string
	userAgent string
	hc        *http.Client
}

// New returns a client for opts.Addr.
func New(opts Options) (*Client, error) {
	addr := strings.TrimSpace(opts.Addr)
	if addr == "" {
		return nil, errors.New("new client: no address")
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("new client: address %q: %w", opts.Addr, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("new client: address %q: scheme must be http or https", opts.Addr)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("new client: address %q has no host", opts.Addr)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("new client: address %q must not carry a query, fragment or user", opts.Addr)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	c := &Client{
		addr:      u.String(),
		token:     opts.Token,
		userAgent: opts.UserAgent,
		hc:        opts.HTTPClient,
	}
	if c.userAgent == "" {
		c.userAgent = "vigil-client"
	}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	if opts.CACert != "" {
		hc, err := withRoots(c.hc, opts.CACert)
		if err != nil {
			return nil, fmt.Errorf("new client: %w", err)
		}
		c.hc = hc
	}
	return c, nil
}

// withRoots returns a copy of hc whose transport trusts only the
// certificates in the PEM file caFile; hc is not changed.
func withRoots(hc *http.Client, caFile string) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("read CA certificate %s: no PEM certificates in it", caFile)
	}
	var tr *http.Transport
	switch t := hc.Transport.(type) {
	case nil:
		tr = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		tr = t.Clone()
	default:
		return nil, fmt.Errorf("a CA certificate needs an *http.Transport, the HTTP client has a %T", hc.Transport)
	}
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tr.TLSClientConfig.RootCAs = pool
	cp := *hc
	cp.Transport = tr
	return &cp, nil
}

// Addr returns the API's base URL.
func (c *Client) Addr() string { return c.addr }

// APIError is an error answered by the API.
type APIError struct {
	Status  int    // the HTTP status
	Code    string // the stable code, such as "invalid_object"; empty when the body was not an API error
	Message string
	Object  string // "Kind/name", when the error is about one object
	Field   string // the field path, such as "spec.port"
}

// Error returns one line: "Pool/web: spec.port: must be 1..65535 (invalid_object)".
func (e *APIError) Error() string {
	var b strings.Builder
	msg := e.Message
	// Servers often start the message with the object or the field already.
	if e.Object != "" && !strings.HasPrefix(msg, e.Object) {
		b.WriteString(e.Object)
		b.WriteString(": ")
	}
	if e.Field != "" && !strings.HasPrefix(msg, e.Field) {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	if msg == "" {
		msg = strings.ToLower(http.StatusText(e.Status))
	}
	b.WriteString(msg)
	if e.Code != "" {
		b.WriteString(" (")
		b.WriteString(e.Code)
		b.WriteString(")")
	} else {
		b.WriteString(" (HTTP ")
		b.WriteString(strconv.Itoa(e.Status))
		b.WriteString(")")
	}
	return b.String()
}

// IsCode reports whether err is an *APIError with the given code, such as
// "not_found" or "conflict".
func IsCode(err error, code string) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == code
}

// KindInfo describes a registered kind.
type KindInfo struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// Result is the outcome for one object of a write: Action is "created",
// "updated", "unchanged", "deleted" or "absent". Object is the object as
// stored (redacted) and Previous what it replaced (redacted, or nil).
type Result struct {
	Kind     string         `json:"kind"`
	Name     string         `json:"name"`
	Action   string         `json:"action"`
	Revision uint64         `json:"revision,omitempty"`
	Object   *config.Object `json:"object,omitempty"`
	Previous *config.Object `json:"previous,omitempty"`
}

// PublishResult answers a published event.
type PublishResult struct {
	ID        string `json:"id"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"`
}

// EventFilter selects events. Since is RFC 3339 or a duration such as
// "15m"; Limit 0 means the server's default.
type EventFilter struct {
	EventID string
	ObjType string
	ObjName string
	Since   string
	Limit   int
	Cursor  string
}

func (f EventFilter) query() url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("event_id", f.EventID)
	set("obj_type", f.ObjType)
	set("obj_name", f.ObjName)
	set("since", f.Since)
	set("cursor", f.Cursor)
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	return q
}

// EventPage is one page of events, oldest first, each a CloudEvents 1.0
// JSON document. NextCursor is empty when there is nothing more now.
type EventPage struct {
	Events     []json.RawMessage `json:"events"`
	NextCursor string            `json:"next_cursor"`
}

// Identity is the caller's token.
type Identity struct {
	Name    string     `json:"name"`
	Role    string     `json:"role"`
	Expires *time.Time `json:"expires,omitempty"`
}

// TokenRequest asks for a new token. Name is generated when empty; TTL is
// a duration such as "720h".
type TokenRequest struct {
	Name        string `json:"name,omitempty"`
	Role        string `json:"role"`
	TTL         string `json:"ttl,omitempty"`
	Description string `json:"description,omitempty"`
}

// TokenCreated is a new token; Token is shown this once.
type TokenCreated struct {
	Name    string     `json:"name"`
	Role    string     `json:"role"`
	Expires *time.Time `json:"expires,omitempty"`
	Token   string     `json:"token"`
}

// TokenInfo describes a token, without its secret.
type TokenInfo struct {
	Name        string     `json:"name"`
	Role        string     `json:"role"`
	Expires     *time.Time `json:"expires,omitempty"`
	Created     *time.Time `json:"created,omitempty"`
	CreatedBy   string     `json:"created_by,omitempty"`
	Description string     `json:"description,omitempty"`
}

// Kinds lists the registered kinds.
func (c *Client) Kinds(ctx context.Context) ([]KindInfo, error) {
	var out struct {
		Kinds []KindInfo `json:"kinds"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/kinds", nil, nil, &out)
	return out.Kinds, err
}

// List returns the objects of kind, sorted by name.
func (c *Client) List(ctx context.Context, kind string) ([]*config.Object, error) {
	var out struct {
		Items []*config.Object `json:"items"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/objects/"+url.PathEscape(kind), nil, nil, &out)
	return out.Items, err
}

// Get returns one object.
func (c *Client) Get(ctx context.Context, kind, name string) (*config.Object, error) {
	var out config.Object
	if err := c.do(ctx, http.MethodGet, objectPath(kind, name), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Put creates or replaces obj and returns it as stored; with dryRun it only
// validates. A metadata.revision on obj makes the write conditional.
func (c *Client) Put(ctx context.Context, obj *config.Object, dryRun bool) (*config.Object, error) {
	q := url.Values{}
	if dryRun {
		q.Set("dry_run", "true")
	}
	var out config.Object
	if err := c.do(ctx, http.MethodPut, objectPath(obj.Kind, obj.Name), q, obj, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Delete deletes one object; with rev, only if it is still at that
// revision.
func (c *Client) Delete(ctx context.Context, kind, name string, rev *uint64) (Result, error) {
	q := url.Values{}
	if rev != nil {
		q.Set("revision", strconv.FormatUint(*rev, 10))
	}
	var out struct {
		Results []Result `json:"results"`
	}
	if err := c.do(ctx, http.MethodDelete, objectPath(kind, name), q, nil, &out); err != nil {
		return Result{}, err
	}
	if len(out.Results) == 0 {
		return Result{Kind: kind, Name: name, Action: "deleted"}, nil
	}
	return out.Results[0], nil
}

// Apply creates or updates objs all or nothing; with dryRun it reports what
// would change and writes nothing.
func (c *Client) Apply(ctx context.Context, objs []*config.Object, dryRun bool) ([]Result, error) {
	if objs == nil {
		objs = []*config.Object{}
	}
	in := struct {
		Objects []*config.Object `json:"objects"`
		DryRun  bool             `json:"dry_run"`
	}{objs, dryRun}
	var out struct {
		Results []Result `json:"results"`
	}
	err := c.do(ctx, http.MethodPost, "/api/v1/apply", nil, in, &out)
	return out.Results, err
}

// DeleteMany deletes refs all or nothing. A ref with a revision is deleted
// only if unchanged; with ignoreMissing, missing objects are "absent"
// rather than an error.
func (c *Client) DeleteMany(ctx context.Context, refs []config.Ref, dryRun, ignoreMissing bool) ([]Result, error) {
	if refs == nil {
		refs = []config.Ref{}
	}
	in := struct {
		Objects       []config.Ref `json:"objects"`
		DryRun        bool         `json:"dry_run"`
		IgnoreMissing bool         `json:"ignore_missing"`
	}{refs, dryRun, ignoreMissing}
	var out struct {
		Results []Result `json:"results"`
	}
	err := c.do(ctx, http.MethodPost, "/api/v1/delete", nil, in, &out)
	return out.Results, err
}

// PublishEvent publishes a CloudEvents 1.0 structured event or a bare
// record ({"event_id", "obj_type", "obj_name", "event_details"}).
func (c *Client) PublishEvent(ctx context.Context, body json.RawMessage) (PublishResult, error) {
	var out PublishResult
	err := c.do(ctx, http.MethodPost, "/api/v1/events", nil, body, &out)
	return out, err
}

// ListEvents returns one page of events matching f.
func (c *Client) ListEvents(ctx context.Context, f EventFilter) (EventPage, error) {
	var out EventPage
	err := c.do(ctx, http.MethodGet, "/api/v1/events", f.query(), nil, &out)
	return out, err
}

// Rejected is a message from vigil.ingest.> that failed validation.
type Rejected struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Subject   string    `json:"subject"`
	Reason    string    `json:"reason"`
	Field     string    `json:"field,omitempty"`
	Data      string    `json:"data"`
	Truncated bool      `json:"truncated,omitempty"`
}

// RejectedPage is one page of rejected messages.
type RejectedPage struct {
	Rejected   []Rejected `json:"rejected"`
	NextCursor string     `json:"next_cursor"`
}

// ListRejected lists ingested messages that failed validation, oldest
// first; cursor continues from an earlier page's NextCursor.
func (c *Client) ListRejected(ctx context.Context, cursor string, limit int) (RejectedPage, error) {
	q := url.Values{}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out RejectedPage
	err := c.do(ctx, http.MethodGet, "/api/v1/events/rejected", q, nil, &out)
	return out, err
}

// StreamEvents reads the Server-Sent Events stream of events matching f,
// resuming after lastID when it is set, and calls fn with each event's id
// and data until ctx ends, fn fails, or the stream ends. It returns fn's
// error as it is, ctx's error when ctx ends, and an error wrapping
// [ErrStreamEnded] when the server closes the stream.
func (c *Client) StreamEvents(ctx context.Context, f EventFilter, lastID string, fn func(id string, event json.RawMessage) error) error {
	req, err := c.newRequest(ctx, http.MethodGet, "/api/v1/events/stream", f.query(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return c.errorFrom(resp)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return fmt.Errorf("stream events from %s: answer is %q, not an event stream", c.addr, resp.Header.Get("Content-Type"))
	}
	err = readSSE(resp.Body, lastID, fn)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var cb callbackError
	switch {
	case err == nil:
		return fmt.Errorf("stream events from %s: %w", c.addr, ErrStreamEnded)
	case errors.As(err, &cb):
		return cb.err
	default:
		return fmt.Errorf("stream events from %s: %w", c.addr, err)
	}
}

// callbackError carries the error of StreamEvents' fn out of readSSE.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

// readSSE parses a text/event-stream body
// (https://html.spec.whatwg.org/multipage/server-sent-events.html) and
// calls fn for each event with data. It returns nil at the end of the body.
func readSSE(r io.Reader, lastID string, fn func(id string, data json.RawMessage) error) error {
	// "event" names the event id, which the data carries too.
	return readSSEEvents(r, lastID, func(id, _ string, data []byte) error {
		return fn(id, json.RawMessage(data))
	})
}

// readSSEEvents is readSSE with each event's name (its "event" field, empty
// when it has none).
func readSSEEvents(r io.Reader, lastID string, fn func(id, event string, data []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxStreamLine+2)
	sc.Split(scanSSELines)
	var (
		data    bytes.Buffer
		hasData bool
		id      = lastID
		event   string
	)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) > MaxStreamLine {
			return fmt.Errorf("a line of the event stream is longer than %d MiB", MaxStreamLine>>20)
		}
		if len(line) == 0 {
			if hasData {
				ev := bytes.TrimSuffix(data.Bytes(), []byte("\n"))
				if err := fn(id, event, bytes.Clone(ev)); err != nil {
					return callbackError{err}
				}
			}
			data.Reset()
			hasData = false
			event = ""
			continue
		}
		if line[0] == ':' {
			continue // a comment, such as the keep-alive
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "data":
			if data.Len()+len(value) > MaxStreamLine {
				return fmt.Errorf("an event of the stream is longer than %d MiB", MaxStreamLine>>20)
			}
			data.Write(value)
			data.WriteByte('\n')
			hasData = true
		case "id":
			if !bytes.ContainsRune(value, 0) {
				id = string(value)
			}
		case "event":
			event = string(value)
		}
		// "retry" is for browsers: reconnecting is the caller's business.
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("a line of the event stream is longer than %d MiB", MaxStreamLine>>20)
		}
		return err
	}
	return nil
}

// scanSSELines splits at "\r\n", "\n" or "\r".
func scanSSELines(data []byte, atEOF bool) (int, []byte, error) {
	for i, b := range data {
		switch b {
		case '\n':
			return i + 1, data[:i], nil
		case '\r':
			if i+1 < len(data) {
				if data[i+1] == '\n' {
					return i + 2, data[:i], nil
				}
				return i + 1, data[:i], nil
			}
			if atEOF {
				return i + 1, data[:i], nil
			}
			return 0, nil, nil // "\r" at the end: wait for a possible "\n"
		}
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// Whoami returns the identity of the client's token.
func (c *Client) Whoami(ctx context.Context) (Identity, error) {
	var out Identity
	err := c.do(ctx, http.MethodGet, "/api/v1/whoami", nil, nil, &out)
	return out, err
}

// CreateToken creates a token; only admins may.
func (c *Client) CreateToken(ctx context.Context, req TokenRequest) (TokenCreated, error) {
	var out TokenCreated
	err := c.do(ctx, http.MethodPost, "/api/v1/tokens", nil, req, &out)
	return out, err
}

// ListTokens lists the tokens, without their secrets.
func (c *Client) ListTokens(ctx context.Context) ([]TokenInfo, error) {
	var out struct {
		Items []TokenInfo `json:"items"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/tokens", nil, nil, &out)
	return out.Items, err
}

// RevokeToken deletes the token called name.
func (c *Client) RevokeToken(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/tokens/"+url.PathEscape(name), nil, nil, nil)
}

func objectPath(kind, name string) string {
	return "/api/v1/objects/" + url.PathEscape(kind) + "/" + url.PathEscape(name)
}

func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, in any) (*http.Request, error) {
	u := c.addr + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if in != nil {
		var data []byte
		if raw, ok := in.(json.RawMessage); ok {
			data = raw
		} else {
			var err error
			if data, err = json.Marshal(in); err != nil {
				return nil, fmt.Errorf("%s %s: encode request: %w", method, path, err)
			}
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// send makes the request; a failure to reach the server names the address.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		u := *req.URL
		u.RawQuery = ""
		return nil, fmt.Errorf("%s %s: %w", req.Method, u.String(), err)
	}
	return resp, nil
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	req, err := c.newRequest(ctx, method, path, q, in)
	if err != nil {
		return err
	}
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return c.errorFrom(resp)
	}
	body, err := readBounded(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s%s: read answer: %w", method, c.addr, path, err)
	}
	if out == nil || len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s %s%s: decode answer: %w", method, c.addr, path, err)
	}
	return nil
}

func readBounded(r io.Reader) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, MaxResponseSize+1))
	if err != nil {
		return nil, err
	}
	if len(body) > MaxResponseSize {
		return nil, fmt.Errorf("answer larger than %d MiB", MaxResponseSize>>20)
	}
	return body, nil
}

// errorFrom turns a non-2xx answer into an *APIError.
func (c *Client) errorFrom(resp *http.Response) error {
	ae := &APIError{Status: resp.StatusCode}
	body, err := readBounded(resp.Body)
	if err != nil {
		ae.Message = fmt.Sprintf("%s (reading the error failed: %v)", strings.ToLower(http.StatusText(resp.StatusCode)), err)
		return ae
	}
	var env struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Object  string `json:"object"`
			Field   string `json:"field"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil && env.Error != nil && (env.Error.Code != "" || env.Error.Message != "") {
		ae.Code = env.Error.Code
		ae.Message = env.Error.Message
		ae.Object = env.Error.Object
		ae.Field = env.Error.Field
		return ae
	}
	// Not an API error: a proxy's page, say. Keep a short first line.
	msg := strings.TrimSpace(string(body))
	if i := strings.IndexAny(msg, "\r\n"); i >= 0 {
		msg = msg[:i]
	}
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	status := strings.ToLower(http.StatusText(resp.StatusCode))
	if msg == "" {
		msg = status
	} else if status != "" {
		msg = status + ": " + msg
	}
	ae.Message = fmt.Sprintf("%s from %s", msg, c.addr)
	return ae
}
