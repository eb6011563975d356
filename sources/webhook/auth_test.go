package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The published vectors. GitHub's: docs "Validating webhook deliveries";
// Slack's: "Verifying requests from Slack"; the Standard Webhooks
// fixtures are those of the reference Go library's tests.
const (
	ghSecret = "It's a Secret to Everybody"
	ghBody   = "Hello, World!"
	ghSig    = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

	slackSecret = "8f742231b10e8888abcd99yyyzzz85a5"
	slackTS     = "1531420618"
	slackBody   = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	slackSig    = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

	swMsgID   = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	swPayload = `{"test": 2432232314}`
	swSecret  = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

// hmacHex is the test's own HMAC-SHA256, independent of the package.
func hmacHex(key, msg string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

func mustAuth(t *testing.T, a *AuthSpec) *authenticator {
	t.Helper()
	au, err := compileAuth(a)
	if err != nil {
		t.Fatal(err)
	}
	return au
}

func secretOf(v string) secretLookup {
	return func(SecretRef) ([]byte, error) { return []byte(v), nil }
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func wantUnauthorized(t *testing.T, err error, contains string) {
	t.Helper()
	var ae *authError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want an authentication failure", err)
	}
	if !strings.Contains(ae.msg, contains) {
		t.Fatalf("message %q does not say %q", ae.msg, contains)
	}
}

func TestGitHubKnownAnswer(t *testing.T) {
	au := mustAuth(t, &AuthSpec{Type: AuthHMAC, Preset: PresetGitHub, Secret: &SecretRef{Name: "gh", Key: "k"}})
	now := time.Now()
	if err := au.check(hdr(HeaderGitHubSignature256, ghSig), []byte(ghBody), now, secretOf(ghSecret)); err != nil {
		t.Fatalf("published vector: %v", err)
	}
	wrong := strings.Replace(ghSig, "757", "758", 1)
	wantUnauthorized(t, au.check(hdr(HeaderGitHubSignature256, wrong), []byte(ghBody), now, secretOf(ghSecret)), "does not match")
	wantUnauthorized(t, au.check(hdr(), []byte(ghBody), now, secretOf(ghSecret)), "missing")
	wantUnauthorized(t, au.check(hdr(HeaderGitHubSignature256, "sha1=00"), []byte(ghBody), now, secretOf(ghSecret)), "does not start with")
	wantUnauthorized(t, au.check(hdr(HeaderGitHubSignature256, "sha256=zz"), []byte(ghBody), now, secretOf(ghSecret)), "not valid hex")
	wantUnauthorized(t, au.check(hdr(HeaderGitHubSignature256, ghSig), []byte(ghBody+" "), now, secretOf(ghSecret)), "does not match")
}

func TestStripeScheme(t *testing.T) {
	au := mustAuth(t, &AuthSpec{Type: AuthHMAC, Preset: PresetStripe, Secret: &SecretRef{Name: "s", Key: "k"}})
	const secret = "whsec_stripe_test_secret"
	body := `{"id":"evt_1","type":"invoice.paid"}`
	now := time.Unix(1_800_000_000, 0)
	ts := strconv.FormatInt(now.Unix()-30, 10)
	good := hmacHex(secret, ts+"."+body)
	// Several v1 values (a rolled secret) and a v0 are allowed.
	h := hdr(HeaderStripeSignature, fmt.Sprintf("t=%s,v1=%s,v1=%s,v0=deadbeef", ts, hmacHex("old", ts+"."+body), good))
	if err := au.check(h, []byte(body), now, secretOf(secret)); err != nil {
		t.Fatalf("valid signature: %v", err)
	}
	stale := strconv.FormatInt(now.Unix()-301, 10)
	h = hdr(HeaderStripeSignature, "t="+stale+",v1="+hmacHex(secret, stale+"."+body))
	wantUnauthorized(t, au.check(h, []byte(body), now, secretOf(secret)), "more than 5m0s from now")
	h = hdr(HeaderStripeSignature, "t="+ts+",v1="+hmacHex("other", ts+"."+body))
	wantUnauthorized(t, au.check(h, []byte(body), now, secretOf(secret)), "does not match")
	h = hdr(HeaderStripeSignature, "v1="+good)
	wantUnauthorized(t, au.check(h, []byte(body), now, secretOf(secret)), "no timestamp")
}

func TestSlackKnownAnswer(t *testing.T) {
	au := mustAuth(t, &AuthSpec{Type: AuthHMAC, Preset: PresetSlack, Secret: &SecretRef{Name: "s", Key: "k"}})
	ts, _ := strconv.ParseInt(slackTS, 10, 64)
	h := hdr(HeaderSlackSignature, slackSig, HeaderSlackTimestamp, slackTS)
	if err := au.check(h, []byte(slackBody), time.Unix(ts+60, 0), secretOf(slackSecret)); err != nil {
		t.Fatalf("published vector: %v", err)
	}
	// The same request ten minutes later is a replay.
	wantUnauthorized(t, au.check(h, []byte(slackBody), time.Unix(ts+600, 0), secretOf(slackSecret)), "from now")
	wantUnauthorized(t, au.check(hdr(HeaderSlackSignature, slackSig), []byte(slackBody), time.Unix(ts, 0), secretOf(slackSecret)), "X-Slack-Request-Timestamp is missing")
	wantUnauthorized(t, au.check(h, []byte(slackBody+"&x=1"), time.Unix(ts, 0), secretOf(slackSecret)), "does not match")
}

func TestStandardWebhooksScheme(t *testing.T) {
	au := mustAuth(t, &AuthSpec{Type: AuthHMAC, Preset: PresetStandardWebhooks, Secret: &SecretRef{Name: "s", Key: "k"}})
	now := time.Unix(1_800_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	key, err := base64.StdEncoding.DecodeString(swSecret)
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(swMsgID + "." + ts + "." + swPayload))
	sig := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	for _, secret := range []string{swSecret, "whsec_" + swSecret} {
		h := hdr(HeaderWebhookID, swMsgID, HeaderWebhookTimestamp, ts, HeaderWebhookSignature, "v1a,AAAA v1,Zm9v "+sig)
		if err := au.check(h, []byte(swPayload), now, secretOf(secret)); err != nil {
			t.Fatalf("secret %q: %v", secret, err)
		}
	}
	h := hdr(HeaderWebhookID, swMsgID, HeaderWebhookTimestamp, ts, HeaderWebhookSignature, sig)
	wantUnauthorized(t, au.check(h, []byte(swPayload), now.Add(6*time.Minute), secretOf(swSecret)), "from now")
	wantUnauthorized(t, au.check(h, []byte(swPayload), now.Add(-6*time.Minute), secretOf(swSecret)), "from now")
	h.Set(HeaderWebhookID, "msg_other")
	wantUnauthorized(t, au.check(h, []byte(swPayload), now, secretOf(swSecret)), "does not match")
	h = hdr(HeaderWebhookID, swMsgID, HeaderWebhookTimestamp, ts, HeaderWebhookSignature, "v1,not*base64")
	wantUnauthorized(t, au.check(h, []byte(swPayload), now, secretOf(swSecret)), "not valid base64")
	// A secret that is not base64 is the operator's problem, not a 401.
	h = hdr(HeaderWebhookID, swMsgID, HeaderWebhookTimestamp, ts, HeaderWebhookSignature, sig)
	err = au.check(h, []byte(swPayload), now, secretOf("not base64!"))
	var se *secretError
	if !errors.As(err, &se) {
		t.Fatalf("bad secret: got %v", err)
	}
}

func TestTokenBasicAndGenericHMAC(t *testing.T) {
	tok := mustAuth(t, &AuthSpec{Type: AuthToken, Secret: &SecretRef{Name: "t", Key: "k"}})
	if err := tok.check(hdr("Authorization", "Bearer s3cret"), nil, time.Now(), secretOf("s3cret")); err != nil {
		t.Fatal(err)
	}
	wantUnauthorized(t, tok.check(hdr("Authorization", "Bearer nope"), nil, time.Now(), secretOf("s3cret")), "wrong")
	tok = mustAuth(t, &AuthSpec{Type: AuthToken, Header: "X-Gitlab-Token", Secret: &SecretRef{Name: "t", Key: "k"}})
	if err := tok.check(hdr("X-Gitlab-Token", "s3cret"), nil, time.Now(), secretOf("s3cret")); err != nil {
		t.Fatal(err)
	}

	basic := mustAuth(t, &AuthSpec{Type: AuthBasic, Username: &SecretRef{Name: "b", Key: "u"}, Password: &SecretRef{Name: "b", Key: "p"}})
	vals := map[string]string{"u": "alice", "p": "pw"}
	lookup := func(r SecretRef) ([]byte, error) { return []byte(vals[r.Key]), nil }
	req, _ := http.NewRequest("POST", "/", nil)
	req.SetBasicAuth("alice", "pw")
	if err := basic.check(req.Header, nil, time.Now(), lookup); err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("alice", "bad")
	wantUnauthorized(t, basic.check(req.Header, nil, time.Now(), lookup), "wrong user name or password")

	gen := mustAuth(t, &AuthSpec{Type: AuthHMAC, Header: "X-Signature", Encoding: "base64", Secret: &SecretRef{Name: "g", Key: "k"}})
	m := hmac.New(sha256.New, []byte("key"))
	m.Write([]byte("{}"))
	if err := gen.check(hdr("X-Signature", base64.StdEncoding.EncodeToString(m.Sum(nil))), []byte("{}"), time.Now(), secretOf("key")); err != nil {
		t.Fatal(err)
	}
	wantUnauthorized(t, gen.check(hdr("X-Signature", "%%%"), []byte("{}"), time.Now(), secretOf("key")), "not valid base64")
	wantUnauthorized(t, gen.check(hdr("X-Signature", strings.Repeat("A", 9000)), []byte("{}"), time.Now(), secretOf("key")), "longer than")
}
