package controller

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/config"
)

var tokenRE = regexp.MustCompile(`^vgl_[A-Za-z0-9_-]{43}$`)

func TestNewToken(t *testing.T) {
	plain, hash, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if !tokenRE.MatchString(plain) {
		t.Errorf("token %q does not match %s", plain, tokenRE)
	}
	if hash != HashToken(plain) || !hashRE.MatchString(hash) {
		t.Errorf("hash %q is not the SHA-256 hex of the token", hash)
	}
	other, _, _ := NewToken()
	if other == plain {
		t.Error("two tokens are equal")
	}
	obj := TokenObject("ci", "script", hash, "admin", time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), "for CI")
	if err := testRegistry(t).Validate(obj); err != nil {
		t.Fatalf("TokenObject is invalid: %v", err)
	}
	if obj.Metadata.Revision != nil {
		t.Error("TokenObject sets a revision")
	}
	var spec map[string]string
	if err := json.Unmarshal(obj.Spec, &spec); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"role": "script", "hash": hash, "expires": "2030-01-02T03:04:05Z", "description": "for CI", "created_by": "admin"}
	for k, v := range want {
		if spec[k] != v {
			t.Errorf("spec.%s = %q, want %q", k, spec[k], v)
		}
	}
	if red := string(redactTokenSpec(obj.Spec)); strings.Contains(red, "hash") || !strings.Contains(red, "script") {
		t.Errorf("redacted spec %s", red)
	}
}

func TestTokenSpecValidation(t *testing.T) {
	reg := testRegistry(t)
	h := strings.Repeat("ab", 32)
	for spec, field := range map[string]string{
		`{"role":"root","hash":"` + h + `"}`:                          "spec.role",
		`{"role":"admin","hash":"ABC"}`:                               "spec.hash",
		`{"role":"admin","hash":"` + h + `","expires":"tomorrow"}`:    "spec.expires",
		`{"role":"admin","hash":"` + h + `","token":"vgl_plaintext"}`: "spec",
	} {
		err := reg.Validate(&config.Object{Kind: "token", Name: "x", Spec: json.RawMessage(spec)})
		var fe *config.FieldError
		if !errors.As(err, &fe) || !strings.HasPrefix(fe.Field, field) || fe.Object != "Token/x" {
			t.Errorf("%s: got %v, want a FieldError on %s", spec, err, field)
		}
	}
}

// TestTokenLifecycle creates a token, uses it, revokes it, and proves that
// the very next request with it is refused; then it lets a token expire on
// the injected clock.
func TestTokenLifecycle(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[RoleAdmin]

	resp, body := e.do(t, "POST", "/api/v1/tokens", admin, `{"name":"ci","role":"script","ttl":"1h","description":"for CI"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var created struct {
		Name, Role, Token string
		Expires           *time.Time
	}
	if err := json.Unmarshal(body, &created); err != nil {
		t.Fatal(err)
	}
	if created.Name != "ci" || created.Role != "script" || !tokenRE.MatchString(created.Token) {
		t.Fatalf("create answered %s", body)
	}
	if want := e.clock.Now().Add(time.Hour); created.Expires == nil || !created.Expires.Equal(want) {
		t.Errorf("expires %v, want %v", created.Expires, want)
	}

	// Only the hash is stored, with the creator.
	obj, err := e.store.Get(context.Background(), "Token", "ci")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(obj.Spec), created.Token) || !strings.Contains(string(obj.Spec), HashToken(created.Token)) {
		t.Errorf("stored spec %s: want the hash and not the token", obj.Spec)
	}
	if obj.Metadata.UpdatedBy != "t-admin" || !strings.Contains(string(obj.Spec), `"created_by":"t-admin"`) {
		t.Errorf("stored token %+v %s: want created by t-admin", obj.Metadata, obj.Spec)
	}

	// The new token works at once, with its own identity.
	resp, body = e.do(t, "GET", "/api/v1/whoami", created.Token, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("whoami: %d %s", resp.StatusCode, body)
	}
	var who map[string]any
	_ = json.Unmarshal(body, &who)
	if who["name"] != "ci" || who["role"] != "script" || who["expires"] == nil {
		t.Errorf("whoami: %s", body)
	}
	resp, body = e.do(t, "GET", "/api/v1/whoami", admin, nil)
	if !strings.Contains(string(body), `"expires":null`) {
		t.Errorf("whoami of a token without expiry: %d %s", resp.StatusCode, body)
	}

	// The same name again is a conflict.
	resp, body = e.do(t, "POST", "/api/v1/tokens", admin, `{"name":"ci","role":"viewer"}`)
	if got := wantErr(t, resp, body, http.StatusConflict, CodeConflict); got.Object != "Token/ci" {
		t.Errorf("conflict names %q", got.Object)
	}

	// The list shows it without hash or value.
	resp, body = e.do(t, "GET", "/api/v1/tokens", e.tokens[RoleOperator], nil)
	if resp.StatusCode != http.StatusOK || strings.Contains(string(body), "hash") || strings.Contains(string(body), created.Token) {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	var list struct{ Items []TokenInfo }
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, it := range list.Items {
		if it.Name == "ci" {
			found = it.Role == RoleScript && it.CreatedBy == "t-admin" && it.Description == "for CI" && it.Expires != nil && it.Created != nil
		}
	}
	if !found {
		t.Errorf("list lacks token ci as created: %s", body)
	}

	// Revoke; the next request is refused.
	resp, body = e.do(t, "DELETE", "/api/v1/tokens/ci", admin, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"name":"ci"`) {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}
	resp, body = e.do(t, "GET", "/api/v1/whoami", created.Token, nil)
	wantErr(t, resp, body, http.StatusUnauthorized, CodeUnauthorized)
	resp, body = e.do(t, "DELETE", "/api/v1/tokens/ci", admin, nil)
	wantErr(t, resp, body, http.StatusNotFound, CodeNotFound)

	// A generated name, and expiry on the clock.
	resp, body = e.do(t, "POST", "/api/v1/tokens", admin, `{"role":"viewer","ttl":"30m"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, &created); err != nil || config.ValidateName(created.Name) != nil {
		t.Fatalf("generated name %q: %v", created.Name, err)
	}
	e.clock.Advance(29 * time.Minute)
	if resp, body := e.do(t, "GET", "/api/v1/kinds", created.Token, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("before expiry: %d %s", resp.StatusCode, body)
	}
	e.clock.Advance(time.Minute)
	resp, body = e.do(t, "GET", "/api/v1/kinds", created.Token, nil)
	if got := wantErr(t, resp, body, http.StatusUnauthorized, CodeUnauthorized); got.Message != "token expired" {
		t.Errorf("message %q, want token expired", got.Message)
	}

	// No token value ever reaches the log.
	for _, tok := range append([]string{created.Token, e.expired}, e.tokens[RoleAdmin], e.tokens[RoleScript]) {
		if strings.Contains(e.logs.String(), tok) || strings.Contains(e.logs.String(), HashToken(tok)) {
			t.Errorf("the log shows a token or its hash")
		}
	}
}

// TestTokenWatch proves that tokens written by another instance (through
// the store) are picked up from the watch, and deleted ones dropped.
func TestTokenWatch(t *testing.T) {
	e := newEnv(t)
	plain, hash, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Apply(context.Background(), []*config.Object{TokenObject("elsewhere", "viewer", hash, "x", time.Time{}, "")},
		config.ApplyOptions{Internal: true}); err != nil {
		t.Fatal(err)
	}
	if resp, body := e.do(t, "GET", "/api/v1/whoami", plain, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("token from the watch: %d %s", resp.StatusCode, body)
	}
	if _, err := e.store.Delete(context.Background(), []config.Ref{{Kind: "Token", Name: "elsewhere"}}, config.DeleteOptions{Internal: true}); err != nil {
		t.Fatal(err)
	}
	resp, body := e.do(t, "GET", "/api/v1/whoami", plain, nil)
	wantErr(t, resp, body, http.StatusUnauthorized, CodeUnauthorized)
}

// TestTokenTableOrdering proves that a late watch event cannot bring back a
// token the API revoked, and that a reload keeps local changes.
func TestTokenTableOrdering(t *testing.T) {
	tt := newTokenTable()
	tt.beginLoad()
	tt.endLoad()
	e1 := &tokenEntry{id: Identity{Name: "a", Role: RoleAdmin}, hash: "h1", rev: 5}
	tt.put(e1, true)
	tt.remove("a", 6, true)
	tt.put(&tokenEntry{id: Identity{Name: "a", Role: RoleAdmin}, hash: "h1", rev: 5}, false) // late watch put
	if _, ok := tt.lookup("h1"); ok {
		t.Fatal("a late watch put revived a revoked token")
	}
	tt.put(&tokenEntry{id: Identity{Name: "a", Role: RoleViewer}, hash: "h2", rev: 7}, false) // re-created
	if id, ok := tt.lookup("h2"); !ok || id.Role != RoleViewer {
		t.Fatal("a newer token of the same name is not used")
	}
	if _, ok := tt.lookup("h1"); ok {
		t.Fatal("the replaced hash still works")
	}

	// A reload whose snapshot predates a local create keeps it.
	tt.beginLoad()
	tt.put(&tokenEntry{id: Identity{Name: "b", Role: RoleScript}, hash: "h3", rev: 9}, true)
	tt.put(&tokenEntry{id: Identity{Name: "a", Role: RoleViewer}, hash: "h2", rev: 7}, false)
	tt.endLoad()
	if _, ok := tt.lookup("h3"); !ok {
		t.Error("reload lost a local create")
	}
	if _, ok := tt.lookup("h2"); !ok {
		t.Error("reload lost a watched token")
	}
}

func TestStartStop(t *testing.T) {
	store := newMemStore(testRegistry(t), time.Now)
	store.watchFn = func(context.Context, string, func(config.Change)) error { return errors.New("kv: no bucket") }
	a, err := New(Options{Store: store, Bus: &fakeBus{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "no bucket") {
		t.Errorf("Start with a failing watch: %v", err)
	}
	a.Stop(t.Context())
	a.Stop(t.Context())

	// A watch that never syncs: Start waits for ctx; /readyz says 503.
	store.watchFn = func(ctx context.Context, _ string, _ func(config.Change)) error { <-ctx.Done(); return nil }
	a, err = New(Options{Store: store, Bus: &fakeBus{}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("readyz before sync: %d", rec.Code)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := a.Start(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Start that never syncs: %v", err)
	}
	a.Stop(t.Context())
	a.Stop(t.Context())

	if _, err := New(Options{Bus: &fakeBus{}}); err == nil {
		t.Error("New without a store succeeded")
	}
}
