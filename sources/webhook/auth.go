package webhook

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // GitHub's legacy X-Hub-Signature is HMAC-SHA1.
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/config"
)

// maxAuthHeader bounds a signature or token header.
const maxAuthHeader = 8 << 10

// scheme is how an HMAC signature is carried and what it signs.
type scheme int

const (
	schemeGeneric  scheme = iota // header = prefix + enc(mac(body)) or mac(ts + "." + body)
	schemeStripe                 // Stripe-Signature: t=<ts>,v1=<hex>[,v1=...]; mac(ts + "." + body)
	schemeSlack                  // X-Slack-Signature: v0=<hex>; mac("v0:" + ts + ":" + body)
	schemeStandard               // webhook-signature: v1,<b64> ...; mac(id + "." + ts + "." + body)
)

// Headers of the signing schemes.
const (
	HeaderGitHubSignature256 = "X-Hub-Signature-256"
	HeaderGitHubSignature    = "X-Hub-Signature"
	HeaderGitHubEvent        = "X-GitHub-Event"
	HeaderGitHubDelivery     = "X-GitHub-Delivery"
	HeaderStripeSignature    = "Stripe-Signature"
	HeaderSlackSignature     = "X-Slack-Signature"
	HeaderSlackTimestamp     = "X-Slack-Request-Timestamp"
	HeaderWebhookID          = "Webhook-Id"
	HeaderWebhookTimestamp   = "Webhook-Timestamp"
	HeaderWebhookSignature   = "Webhook-Signature"
)

// authenticator checks a request against a receiver's auth.
type authenticator struct {
	typ       string
	header    string // token, hmac
	secret    SecretRef
	username  SecretRef
	password  SecretRef
	scheme    scheme
	newHash   func() hash.Hash
	prefix    string
	base64    bool
	tsHeader  string
	tolerance time.Duration
}

func compileAuth(a *AuthSpec) (*authenticator, error) {
	if a == nil {
		return nil, config.Errorf("spec.auth", "is required: give {type: none} to accept unauthenticated requests, or token, basic or hmac")
	}
	au := &authenticator{typ: a.Type, header: a.Header, tolerance: DefaultTolerance}
	needSecret := func() error {
		if a.Secret == nil {
			return config.Errorf("spec.auth.secret", "is required for auth type %s: {name, key} of a Secret", a.Type)
		}
		if err := checkRef("spec.auth.secret", a.Secret); err != nil {
			return err
		}
		au.secret = *a.Secret
		return nil
	}
	unused := func(field string, set bool) error {
		if set {
			return config.Errorf("spec.auth."+field, "does not apply to auth type %s", a.Type)
		}
		return nil
	}
	hmacOnly := func() error {
		for _, f := range []struct {
			name string
			set  bool
		}{{"preset", a.Preset != ""}, {"algorithm", a.Algorithm != ""}, {"prefix", a.Prefix != ""}, {"encoding", a.Encoding != ""}, {"timestamp_header", a.TimestampHeader != ""}, {"tolerance", a.Tolerance != 0}} {
			if err := unused(f.name, f.set); err != nil {
				return err
			}
		}
		return nil
	}
	switch a.Type {
	case AuthNone:
		if err := hmacOnly(); err != nil {
			return nil, err
		}
		for _, f := range []struct {
			name string
			set  bool
		}{{"header", a.Header != ""}, {"secret", a.Secret != nil}, {"username", a.Username != nil}, {"password", a.Password != nil}} {
			if err := unused(f.name, f.set); err != nil {
				return nil, err
			}
		}
		return au, nil
	case AuthToken:
		if err := hmacOnly(); err != nil {
			return nil, err
		}
		if err := unused("username", a.Username != nil); err != nil {
			return nil, err
		}
		if err := unused("password", a.Password != nil); err != nil {
			return nil, err
		}
		if au.header == "" {
			au.header = "Authorization"
		}
		if err := checkHeaderName("spec.auth.header", au.header); err != nil {
			return nil, err
		}
		return au, needSecret()
	case AuthBasic:
		if err := hmacOnly(); err != nil {
			return nil, err
		}
		if err := unused("header", a.Header != ""); err != nil {
			return nil, err
		}
		if err := unused("secret", a.Secret != nil); err != nil {
			return nil, err
		}
		if a.Username == nil {
			return nil, config.Errorf("spec.auth.username", "is required for auth type basic: {name, key} of a Secret")
		}
		if a.Password == nil {
			return nil, config.Errorf("spec.auth.password", "is required for auth type basic: {name, key} of a Secret")
		}
		if err := checkRef("spec.auth.username", a.Username); err != nil {
			return nil, err
		}
		if err := checkRef("spec.auth.password", a.Password); err != nil {
			return nil, err
		}
		au.username, au.password = *a.Username, *a.Password
		return au, nil
	case AuthHMAC:
		if err := unused("username", a.Username != nil); err != nil {
			return nil, err
		}
		if err := unused("password", a.Password != nil); err != nil {
			return nil, err
		}
		if err := needSecret(); err != nil {
			return nil, err
		}
		return au, compileHMAC(au, a)
	case "":
		return nil, config.Errorf("spec.auth.type", "is required: none, token, basic or hmac")
	}
	return nil, config.Errorf("spec.auth.type", "unknown auth type %q: none, token, basic or hmac", a.Type)
}

func compileHMAC(au *authenticator, a *AuthSpec) error {
	alg := a.Algorithm
	if alg == "" {
		alg = "sha256"
	}
	switch alg {
	case "sha256":
		au.newHash = sha256.New
	case "sha1":
		au.newHash = sha1.New
	case "sha512":
		au.newHash = sha512.New
	default:
		return config.Errorf("spec.auth.algorithm", "unknown algorithm %q: sha256, sha1 or sha512", a.Algorithm)
	}
	switch a.Encoding {
	case "", "hex":
	case "base64":
		au.base64 = true
	default:
		return config.Errorf("spec.auth.encoding", "unknown encoding %q: hex or base64", a.Encoding)
	}
	if d := a.Tolerance.D(); d != 0 {
		if d < time.Second || d > 24*time.Hour {
			return config.Errorf("spec.auth.tolerance", "must be between 1s and 24h")
		}
		au.tolerance = d
	}
	au.prefix, au.tsHeader = a.Prefix, a.TimestampHeader
	fixed := func(what string) error {
		for _, f := range []struct {
			name string
			set  bool
		}{{"header", a.Header != ""}, {"prefix", a.Prefix != ""}, {"encoding", a.Encoding != ""}, {"timestamp_header", a.TimestampHeader != ""}, {"algorithm", what != "github" && a.Algorithm != ""}} {
			if f.set {
				return config.Errorf("spec.auth."+f.name, "is fixed by preset %s", a.Preset)
			}
		}
		return nil
	}
	switch a.Preset {
	case "":
		if au.header == "" {
			return config.Errorf("spec.auth.header", "is required for hmac without a preset: the header that carries the signature")
		}
		if err := checkHeaderName("spec.auth.header", au.header); err != nil {
			return err
		}
		if au.tsHeader != "" {
			if err := checkHeaderName("spec.auth.timestamp_header", au.tsHeader); err != nil {
				return err
			}
		} else if a.Tolerance != 0 {
			return config.Errorf("spec.auth.tolerance", "applies only with timestamp_header or a preset that signs a timestamp")
		}
	case PresetGitHub:
		if err := fixed("github"); err != nil {
			return err
		}
		if a.Tolerance != 0 {
			return config.Errorf("spec.auth.tolerance", "does not apply: GitHub signs no timestamp")
		}
		switch alg {
		case "sha256":
			au.header, au.prefix = HeaderGitHubSignature256, "sha256="
		case "sha1":
			au.header, au.prefix = HeaderGitHubSignature, "sha1="
		default:
			return config.Errorf("spec.auth.algorithm", "preset github signs with sha256 (or the legacy sha1)")
		}
	case PresetStripe:
		if err := fixed("stripe"); err != nil {
			return err
		}
		au.scheme, au.header, au.newHash = schemeStripe, HeaderStripeSignature, sha256.New
	case PresetSlack:
		if err := fixed("slack"); err != nil {
			return err
		}
		au.scheme, au.header, au.tsHeader, au.newHash = schemeSlack, HeaderSlackSignature, HeaderSlackTimestamp, sha256.New
	case PresetStandardWebhooks:
		if err := fixed("standard-webhooks"); err != nil {
			return err
		}
		au.scheme, au.header, au.tsHeader, au.newHash = schemeStandard, HeaderWebhookSignature, HeaderWebhookTimestamp, sha256.New
	default:
		return config.Errorf("spec.auth.preset", "unknown preset %q: github, stripe, slack or standard-webhooks", a.Preset)
	}
	return nil
}

func checkRef(field string, r *SecretRef) error {
	if err := config.ValidateName(r.Name); err != nil {
		return config.Errorf(field+".name", "%v", err)
	}
	if r.Key == "" {
		return config.Errorf(field+".key", "is required: the key in Secret %s", r.Name)
	}
	return nil
}

func checkHeaderName(field, h string) error {
	if len(h) > 128 {
		return config.Errorf(field, "is longer than 128 bytes")
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		token := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !token {
			return config.Errorf(field, "%q is not a valid HTTP header name", h)
		}
	}
	return nil
}

// authError is a request that fails authentication (401). The message
// says what is wrong without revealing anything secret.
type authError struct{ msg string }

func (e *authError) Error() string { return e.msg }

func unauthorized(format string, args ...any) error {
	return &authError{msg: fmt.Sprintf(format, args...)}
}

// secretLookup returns the value of a Secret key.
type secretLookup func(SecretRef) ([]byte, error)

// check authenticates a request with body. It returns an *authError for a
// request that fails, or another error when a secret cannot be read.
func (au *authenticator) check(h http.Header, body []byte, now time.Time, secret secretLookup) error {
	switch au.typ {
	case AuthNone:
		return nil
	case AuthToken:
		got, err := authHeader(h, au.header)
		if err != nil {
			return err
		}
		want, err := secret(au.secret)
		if err != nil {
			return err
		}
		if strings.EqualFold(au.header, "Authorization") {
			if t, ok := cutPrefixFold(got, "Bearer "); ok {
				got = t
			}
		}
		if subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			return unauthorized("the token in %s is wrong", au.header)
		}
		return nil
	case AuthBasic:
		u, p, ok := basicAuth(h)
		if !ok {
			return unauthorized("basic authentication is required")
		}
		wu, err := secret(au.username)
		if err != nil {
			return err
		}
		wp, err := secret(au.password)
		if err != nil {
			return err
		}
		// Both comparisons run, so that the time does not tell which failed.
		uok := subtle.ConstantTimeCompare([]byte(u), wu)
		pok := subtle.ConstantTimeCompare([]byte(p), wp)
		if uok&pok != 1 {
			return unauthorized("wrong user name or password")
		}
		return nil
	}
	return au.checkHMAC(h, body, now, secret)
}

func basicAuth(h http.Header) (user, pass string, ok bool) {
	r := http.Request{Header: h}
	return r.BasicAuth()
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// authHeader returns the single value of header name.
func authHeader(h http.Header, name string) (string, error) {
	vs := h.Values(name)
	switch {
	case len(vs) == 0 || vs[0] == "":
		return "", unauthorized("header %s is missing", name)
	case len(vs) > 1:
		return "", unauthorized("header %s is given more than once", name)
	case len(vs[0]) > maxAuthHeader:
		return "", unauthorized("header %s is longer than %d bytes", name, maxAuthHeader)
	}
	return vs[0], nil
}

func (au *authenticator) checkHMAC(h http.Header, body []byte, now time.Time, secret secretLookup) error {
	sigHeader, err := authHeader(h, au.header)
	if err != nil {
		return err
	}
	key, err := secret(au.secret)
	if err != nil {
		return err
	}
	switch au.scheme {
	case schemeStripe:
		ts, sigs, err := ParseStripeSignature(sigHeader)
		if err != nil {
			return unauthorized("header %s: %v", au.header, err)
		}
		if err := au.fresh(ts, now); err != nil {
			return err
		}
		want := au.mac(key, []byte(strconv.FormatInt(ts, 10)), []byte("."), body)
		return anyEqual(sigs, want, au.header)
	case schemeSlack:
		tsv, err := au.timestamp(h, now)
		if err != nil {
			return err
		}
		sig, err := ParseSlackSignature(sigHeader)
		if err != nil {
			return unauthorized("header %s: %v", au.header, err)
		}
		want := au.mac(key, []byte("v0:"), []byte(tsv), []byte(":"), body)
		return anyEqual([][]byte{sig}, want, au.header)
	case schemeStandard:
		id, err := authHeader(h, HeaderWebhookID)
		if err != nil {
			return err
		}
		tsv, err := au.timestamp(h, now)
		if err != nil {
			return err
		}
		sigs, err := ParseStandardSignatures(sigHeader)
		if err != nil {
			return unauthorized("header %s: %v", au.header, err)
		}
		k, err := StandardWebhooksKey(key)
		if err != nil {
			return &secretError{ref: au.secret, err: err}
		}
		want := au.mac(k, []byte(id), []byte("."), []byte(tsv), []byte("."), body)
		return anyEqual(sigs, want, au.header)
	}
	sig, err := ParsePrefixedSignature(sigHeader, au.prefix, au.base64)
	if err != nil {
		return unauthorized("header %s: %v", au.header, err)
	}
	if au.tsHeader == "" {
		return anyEqual([][]byte{sig}, au.mac(key, body), au.header)
	}
	tsv, err := au.timestamp(h, now)
	if err != nil {
		return err
	}
	return anyEqual([][]byte{sig}, au.mac(key, []byte(tsv), []byte("."), body), au.header)
}

// timestamp reads the signed timestamp header and checks that it is
// within the tolerance of now; it returns the header's text, which is
// what is signed.
func (au *authenticator) timestamp(h http.Header, now time.Time) (string, error) {
	tsv, err := authHeader(h, au.tsHeader)
	if err != nil {
		return "", err
	}
	ts, err := parseUnix(tsv)
	if err != nil {
		return "", unauthorized("header %s: %v", au.tsHeader, err)
	}
	return tsv, au.fresh(ts, now)
}

func (au *authenticator) mac(key []byte, parts ...[]byte) []byte {
	m := hmac.New(au.newHash, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// fresh checks a signed timestamp against the tolerance, both ways.
func (au *authenticator) fresh(ts int64, now time.Time) error {
	d := now.Sub(time.Unix(ts, 0))
	if d > au.tolerance || d < -au.tolerance {
		return unauthorized("the signed timestamp %d is more than %s from now; replayed or clock skew", ts, au.tolerance)
	}
	return nil
}

// anyEqual compares each candidate signature with want in constant time.
func anyEqual(sigs [][]byte, want []byte, header string) error {
	ok := 0
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			ok = 1
		}
	}
	if ok != 1 {
		return unauthorized("header %s: the signature does not match", header)
	}
	return nil
}

func parseUnix(s string) (int64, error) {
	if len(s) == 0 || len(s) > 12 {
		return 0, errors.New("not a unix timestamp in seconds")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, errors.New("not a unix timestamp in seconds")
	}
	return n, nil
}

// ParsePrefixedSignature reads a signature header of the form
// prefix + hex or base64, e.g. GitHub's "sha256=<hex>". The prefix is
// required when given.
func ParsePrefixedSignature(v, prefix string, isBase64 bool) ([]byte, error) {
	if len(v) > maxAuthHeader {
		return nil, fmt.Errorf("longer than %d bytes", maxAuthHeader)
	}
	rest, ok := strings.CutPrefix(v, prefix)
	if !ok {
		return nil, fmt.Errorf("does not start with %q", prefix)
	}
	if rest == "" {
		return nil, errors.New("the signature is empty")
	}
	if isBase64 {
		b, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return nil, errors.New("the signature is not valid base64")
		}
		return b, nil
	}
	b, err := hex.DecodeString(rest)
	if err != nil {
		return nil, errors.New("the signature is not valid hex")
	}
	return b, nil
}

// ParseStripeSignature reads a Stripe-Signature header,
// "t=<unix>,v1=<hex>[,v1=<hex>...]"; other schemes (v0) are ignored.
func ParseStripeSignature(v string) (ts int64, sigs [][]byte, err error) {
	if len(v) > maxAuthHeader {
		return 0, nil, fmt.Errorf("longer than %d bytes", maxAuthHeader)
	}
	haveTS := false
	for _, item := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return 0, nil, fmt.Errorf("%q is not key=value", clip(item))
		}
		switch k {
		case "t":
			if haveTS {
				return 0, nil, errors.New("t is given more than once")
			}
			if ts, err = parseUnix(val); err != nil {
				return 0, nil, fmt.Errorf("t: %w", err)
			}
			haveTS = true
		case "v1":
			b, err := hex.DecodeString(val)
			if err != nil || len(b) == 0 {
				return 0, nil, errors.New("a v1 signature is not valid hex")
			}
			sigs = append(sigs, b)
		}
	}
	if !haveTS {
		return 0, nil, errors.New("no timestamp (t=)")
	}
	if len(sigs) == 0 {
		return 0, nil, errors.New("no v1 signature")
	}
	return ts, sigs, nil
}

// ParseSlackSignature reads an X-Slack-Signature header, "v0=<hex>".
func ParseSlackSignature(v string) ([]byte, error) {
	return ParsePrefixedSignature(v, "v0=", false)
}

// ParseStandardSignatures reads a webhook-signature header: a
// space-separated list of "<version>,<base64>"; the v1 (HMAC-SHA256)
// signatures are returned and other versions (v1a) ignored.
func ParseStandardSignatures(v string) ([][]byte, error) {
	if len(v) > maxAuthHeader {
		return nil, fmt.Errorf("longer than %d bytes", maxAuthHeader)
	}
	var sigs [][]byte
	for _, item := range strings.Fields(v) {
		ver, sig, ok := strings.Cut(item, ",")
		if !ok {
			return nil, fmt.Errorf("%q is not <version>,<signature>", clip(item))
		}
		if ver != "v1" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(sig)
		if err != nil || len(b) == 0 {
			return nil, errors.New("a v1 signature is not valid base64")
		}
		sigs = append(sigs, b)
	}
	if len(sigs) == 0 {
		return nil, errors.New("no v1 signature")
	}
	return sigs, nil
}

// StandardWebhooksKey returns the HMAC key of a Standard Webhooks secret:
// the bytes that the base64 after an optional "whsec_" decodes to.
func StandardWebhooksKey(secret []byte) ([]byte, error) {
	s := strings.TrimPrefix(string(secret), "whsec_")
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(k) == 0 {
		return nil, errors.New("a Standard Webhooks secret must be whsec_ and base64")
	}
	return k, nil
}

func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
