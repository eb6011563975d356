package controller

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/vigilhq/vigil/config"
)

// TokenKind is the kind that stores API tokens (their hashes only).
const TokenKind = "Token"

// TokenPrefix starts every token value.
const TokenPrefix = "vgl_"

// TokenSpec is the spec of a Token object.
type TokenSpec struct {
	Role        string `json:"role"`
	Hash        string `json:"hash,omitempty"`
	Expires     string `json:"expires,omitempty"`
	Description string `json:"description,omitempty"`
	CreatedBy   string `json:"created_by,omitempty"`
}

var hashRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// tokenKind is registered into config.Kinds by init.
var tokenKind = config.Kind{
	Name:        TokenKind,
	Description: "An API token: its role, expiry and SHA-256 hash (the value is never stored).",
	Sensitive:   true,
	AdminOnly:   true,
	Internal:    true,
	Validate:    validateTokenSpec,
	Redact:      redactTokenSpec,
}

func init() { config.Register(tokenKind) }

func decodeTokenSpec(spec json.RawMessage) (TokenSpec, error) {
	var s TokenSpec
	err := config.DecodeSpec(spec, &s)
	return s, err
}

func validateTokenSpec(spec json.RawMessage) error {
	s, err := decodeTokenSpec(spec)
	if err != nil {
		return err
	}
	if _, err := ParseRole(s.Role); err != nil {
		return config.Errorf("spec.role", "%v", err)
	}
	if !hashRE.MatchString(s.Hash) {
		return config.Errorf("spec.hash", "must be 64 lower-case hex digits (a SHA-256)")
	}
	if s.Expires != "" {
		if _, err := time.Parse(time.RFC3339, s.Expires); err != nil {
			return config.Errorf("spec.expires", "must be an RFC 3339 time: %v", err)
		}
	}
	return nil
}

// redactTokenSpec drops the hash.
func redactTokenSpec(spec json.RawMessage) json.RawMessage {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(spec, &m); err != nil {
		return json.RawMessage(`{}`)
	}
	delete(m, "hash")
	out, err := json.Marshal(m)
	if err != nil {
		return json.RawMessage(`{}`)
	}
	return out
}

// NewToken returns a new token value (TokenPrefix and 43 base64url
// characters: 256 random bits) and its hash.
func NewToken() (plain, hash string, err error) {
	var buf [32]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return "", "", fmt.Errorf("new token: %w", err)
	}
	plain = TokenPrefix + base64.RawURLEncoding.EncodeToString(buf[:])
	return plain, HashToken(plain), nil
}

// HashToken returns the SHA-256 of a token value in lower-case hex, the only
// form vigil stores.
func HashToken(plain string) string {
	sum := sha256.Sum256([]byte(plain))
	return hex.EncodeToString(sum[:])
}

// TokenObject returns the Token object for a token with hash. A zero expires
// means the token does not expire. Metadata.Revision is nil (upsert); set it
// to 0 to create only when the name is free.
func TokenObject(name, role, hash, createdBy string, expires time.Time, description string) *config.Object {
	s := TokenSpec{Role: role, Hash: hash, Description: description, CreatedBy: createdBy}
	if !expires.IsZero() {
		s.Expires = expires.UTC().Format(time.RFC3339)
	}
	spec, _ := json.Marshal(s) // a struct of strings always encodes
	return &config.Object{Kind: TokenKind, Name: name, Spec: spec}
}

// tokenEntry is one token as the API knows it. A deleted entry is a
// tombstone: it keeps a late watch event from bringing a revoked token back.
type tokenEntry struct {
	id      Identity
	hash    string
	rev     uint64
	deleted bool
}

// tokenTable maps token hashes to identities. The watch fills it; token
// creation and revocation update it at once, so a revoked token is refused
// by the very next request. Revisions order the two sources.
type tokenTable struct {
	mu     sync.RWMutex
	byHash map[string]*tokenEntry
	byName map[string]*tokenEntry
	synced bool

	// While a watch (re)loads, its snapshot goes to staging; local changes
	// made meanwhile are remembered in dirty and survive the swap.
	staging map[string]*tokenEntry
	dirty   map[string]bool
}

func newTokenTable() *tokenTable {
	return &tokenTable{byHash: map[string]*tokenEntry{}, byName: map[string]*tokenEntry{}}
}

func (t *tokenTable) lookup(hash string) (Identity, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, ok := t.byHash[hash]
	if !ok {
		return Identity{}, false
	}
	return e.id, true
}

func (t *tokenTable) isSynced() bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.synced
}

// beginLoad starts collecting a watch's snapshot.
func (t *tokenTable) beginLoad() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.staging = map[string]*tokenEntry{}
	t.dirty = map[string]bool{}
}

// endLoad swaps the snapshot in, keeping entries changed locally meanwhile.
func (t *tokenTable) endLoad() {
	t.mu.Lock()
	defer t.mu.Unlock()
	next := t.staging
	for name := range t.dirty {
		if cur, ok := t.byName[name]; ok {
			if s, ok := next[name]; !ok || cur.rev > s.rev {
				next[name] = cur
			}
		}
	}
	t.byName = next
	t.byHash = map[string]*tokenEntry{}
	for _, e := range next {
		if !e.deleted {
			t.byHash[e.hash] = e
		}
	}
	t.staging, t.dirty = nil, nil
	t.synced = true
}

// put records a token at rev; local is true for the API's own writes.
func (t *tokenTable) put(e *tokenEntry, local bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.staging != nil && !local {
		t.staging[e.id.Name] = e
		return
	}
	if t.dirty != nil && local {
		t.dirty[e.id.Name] = true
	}
	cur := t.byName[e.id.Name]
	if cur != nil && e.rev != 0 && e.rev <= cur.rev {
		return
	}
	if cur != nil && !cur.deleted {
		delete(t.byHash, cur.hash)
	}
	t.byName[e.id.Name] = e
	t.byHash[e.hash] = e
}

// remove revokes the token called name at rev.
func (t *tokenTable) remove(name string, rev uint64, local bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.staging != nil && !local {
		delete(t.staging, name)
		return
	}
	if t.dirty != nil && local {
		t.dirty[name] = true
	}
	cur := t.byName[name]
	if cur != nil && rev != 0 && rev < cur.rev {
		return
	}
	if cur != nil && !cur.deleted {
		delete(t.byHash, cur.hash)
	}
	t.byName[name] = &tokenEntry{id: Identity{Name: name}, rev: max(rev, revOf(cur)), deleted: true}
}

func revOf(e *tokenEntry) uint64 {
	if e == nil {
		return 0
	}
	return e.rev
}

// tokenEntryOf reads a stored Token object.
func tokenEntryOf(obj *config.Object, rev uint64) (*tokenEntry, error) {
	s, err := decodeTokenSpec(obj.Spec)
	if err != nil {
		return nil, err
	}
	role, err := ParseRole(s.Role)
	if err != nil {
		return nil, err
	}
	if !hashRE.MatchString(s.Hash) {
		return nil, errors.New("spec.hash is not a SHA-256")
	}
	var exp time.Time
	if s.Expires != "" {
		if exp, err = time.Parse(time.RFC3339, s.Expires); err != nil {
			return nil, fmt.Errorf("spec.expires: %w", err)
		}
	}
	if rev == 0 {
		rev = obj.Rev()
	}
	return &tokenEntry{id: Identity{Name: obj.Name, Role: role, Expires: exp}, hash: s.Hash, rev: rev}, nil
}

// watchTokens follows the Token kind until ctx ends. A watch that fails to
// start is retried with a capped backoff; the first load's outcome goes to
// firstSync. Store.Watch may block until ctx ends or return once the watch
// runs; both work.
func (a *API) watchTokens(ctx context.Context, firstSync chan<- error) {
	var once sync.Once
	signal := func(err error) { once.Do(func() { firstSync <- err }) }
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		a.tokens.beginLoad()
		err := a.store.Watch(ctx, TokenKind, func(c config.Change) {
			switch c.Op {
			case config.OpSynced:
				a.tokens.endLoad()
				signal(nil)
			case config.OpPut:
				e, err := tokenEntryOf(c.Object, c.Revision)
				if err != nil {
					a.log.Error("ignore invalid token", "token", c.Object.Name, "err", err)
					a.tokens.remove(c.Object.Name, c.Revision, false)
					return
				}
				a.tokens.put(e, false)
			case config.OpDelete:
				a.tokens.remove(c.Object.Name, c.Revision, false)
			}
		})
		if err == nil || ctx.Err() != nil {
			<-ctx.Done()
			return
		}
		if !a.tokens.isSynced() {
			signal(err)
			return
		}
		a.log.Error("token watch failed; restarting", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// authenticate finds the caller of a token route.
func (a *API) authenticate(r *http.Request) (Identity, error) {
	plain, ok := bearer(r)
	if !ok {
		return Identity{}, errUnauthorized("missing bearer token")
	}
	if strings.HasPrefix(plain, ExecTokenPrefix) {
		return a.execIdentity(r.Context(), plain)
	}
	if !a.tokens.isSynced() {
		return Identity{}, errUnavailable("tokens are not loaded yet")
	}
	id, ok := a.tokens.lookup(HashToken(plain))
	if !ok {
		return Identity{}, errUnauthorized("unknown token")
	}
	if !id.Expires.IsZero() && !a.now().Before(id.Expires) {
		return Identity{}, errUnauthorized("token expired")
	}
	return id, nil
}

// TokenInfo is a token as GET /api/v1/tokens shows it.
type TokenInfo struct {
	Name        string     `json:"name"`
	Role        Role       `json:"role"`
	Expires     *time.Time `json:"expires"`
	Created     *time.Time `json:"created"`
	CreatedBy   string     `json:"created_by"`
	Description string     `json:"description"`
}

// tokenRequest is the body of POST /api/v1/tokens.
type tokenRequest struct {
	Name        string `json:"name"`
	Role        string `json:"role"`
	TTL         string `json:"ttl"`
	Description string `json:"description"`
}

// newTokenAnswer is the answer of POST /api/v1/tokens.
type newTokenAnswer struct {
	Name    string     `json:"name"`
	Role    Role       `json:"role"`
	Expires *time.Time `json:"expires"`
	Token   string     `json:"token"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (a *API) handleWhoami(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	writeJSON(w, http.StatusOK, map[string]any{"name": id.Name, "role": id.Role, "expires": timePtr(id.Expires)})
}

func (a *API) handleCreateToken(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	if err := decodeBody(w, r, MaxTokenBody, &req, true); err != nil {
		a.writeError(w, r, err)
		return
	}
	role, err := ParseRole(req.Role)
	if err != nil {
		a.writeError(w, r, errBadRequest("role", "%v", err))
		return
	}
	var expires time.Time
	if req.TTL != "" {
		ttl, err := time.ParseDuration(req.TTL)
		if err != nil || ttl <= 0 {
			a.writeError(w, r, errBadRequest("ttl", "must be a positive duration such as 720h, got %q", req.TTL))
			return
		}
		expires = a.now().Add(ttl).UTC().Truncate(time.Second)
	}
	name := req.Name
	if name == "" {
		var buf [6]byte
		if _, err := rand.Read(buf[:]); err != nil {
			a.writeError(w, r, fmt.Errorf("token name: %w", err))
			return
		}
		name = "tok-" + hex.EncodeToString(buf[:])
	}
	if err := config.ValidateName(name); err != nil {
		a.writeError(w, r, errBadRequest("name", "%v", err))
		return
	}
	plain, hash, err := NewToken()
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	caller, _ := IdentityFrom(r.Context())
	obj := TokenObject(name, string(role), hash, caller.Name, expires, req.Description)
	zero := uint64(0)
	obj.Metadata.Revision = &zero
	res, err := a.store.Apply(r.Context(), []*config.Object{obj}, config.ApplyOptions{User: caller.Name, Internal: true})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	rev := uint64(0)
	if len(res) == 1 {
		rev = res[0].Revision
	}
	a.tokens.put(&tokenEntry{id: Identity{Name: name, Role: role, Expires: expires}, hash: hash, rev: rev}, true)
	a.log.Info("token created", "token", name, "role", role, "by", caller.Name)
	writeJSON(w, http.StatusCreated, newTokenAnswer{Name: name, Role: role, Expires: timePtr(expires), Token: plain})
}

func (a *API) handleListTokens(w http.ResponseWriter, r *http.Request) {
	objs, err := a.store.List(r.Context(), TokenKind)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	items := make([]TokenInfo, 0, len(objs))
	for _, obj := range objs {
		s, err := decodeTokenSpec(obj.Spec)
		if err != nil {
			a.log.Error("ignore invalid token", "token", obj.Name, "err", err)
			continue
		}
		info := TokenInfo{
			Name: obj.Name, Role: Role(s.Role), Created: timePtr(obj.Metadata.Created),
			CreatedBy: s.CreatedBy, Description: s.Description,
		}
		if t, err := time.Parse(time.RFC3339, s.Expires); err == nil {
			info.Expires = &t
		}
		items = append(items, info)
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
}

func (a *API) handleRevokeToken(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	caller, _ := IdentityFrom(r.Context())
	res, err := a.store.Delete(r.Context(), []config.Ref{{Kind: TokenKind, Name: name}},
		config.DeleteOptions{User: caller.Name, Internal: true})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	rev := uint64(0)
	if len(res) == 1 {
		if res[0].Action == "absent" {
			a.writeError(w, r, errNotFound(TokenKind+"/"+name, "no such token"))
			return
		}
		rev = res[0].Revision
	}
	a.tokens.remove(name, rev, true)
	a.log.Info("token revoked", "token", name, "by", caller.Name)
	writeJSON(w, http.StatusOK, map[string]string{"name": name})
}
