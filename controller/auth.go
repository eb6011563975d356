package controller

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/vigilhq/vigil/config"
)

// AuthClass is how a route authenticates its caller. Every route has exactly
// one, declared in the route table.
type AuthClass string

// The auth classes.
const (
	// AuthPublic routes need no credentials (/healthz, /readyz).
	AuthPublic AuthClass = "public"
	// AuthToken routes need a bearer token whose role allows the route's Perm.
	AuthToken AuthClass = "token"
	// AuthReceiver routes (/hooks/{name}) are checked by the receiver's own
	// auth, not by vigil's tokens.
	AuthReceiver AuthClass = "receiver"
)

// Role is what a token may do.
type Role string

// The roles, from least to most privileged (script sits beside operator).
const (
	RoleViewer   Role = "viewer"
	RoleScript   Role = "script"
	RoleOperator Role = "operator"
	RoleAdmin    Role = "admin"
)

// Roles lists every role.
var Roles = []Role{RoleAdmin, RoleOperator, RoleViewer, RoleScript}

// ParseRole returns the role named s (case-insensitive).
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	for _, known := range Roles {
		if r == known {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown role %q (known: admin, operator, viewer, script)", s)
}

// Perm is what a route, or one object in a request, needs from the caller's
// role. Which roles hold which perm is decided in one place: [Allowed].
type Perm string

// The perms.
const (
	// PermNone is the perm of public and receiver routes.
	PermNone Perm = ""
	// PermRead reads kinds, events, non-sensitive objects and the caller's
	// own identity, and scrapes /metrics.
	PermRead Perm = "read"
	// PermSensitiveRead reads objects of Sensitive kinds (Secrets, shown
	// redacted).
	PermSensitiveRead Perm = "sensitive-read"
	// PermPrivilegedRead reads objects of kinds that are both Sensitive and
	// AdminOnly, and lists tokens.
	PermPrivilegedRead Perm = "privileged-read"
	// PermWrite writes objects of ordinary kinds.
	PermWrite Perm = "write"
	// PermPublish publishes events.
	PermPublish Perm = "publish"
	// PermSensitiveWrite writes objects of Sensitive kinds (Secrets).
	PermSensitiveWrite Perm = "sensitive-write"
	// PermAdmin creates and revokes tokens and writes AdminOnly kinds.
	PermAdmin Perm = "admin"
	// PermRun runs ControlScripts and cancels executions.
	PermRun Perm = "run"

	// PermObjectRead marks a route that reads objects of the kind it names:
	// the route itself needs PermRead, and each kind adds what
	// [ObjectPerm] says.
	PermObjectRead Perm = "object-read"
	// PermObjectWrite marks a route that writes objects of the kinds it
	// names: the route itself needs PermWrite, and each kind adds what
	// [ObjectPerm] says.
	PermObjectWrite Perm = "object-write"
)

// roleMatrix is the role table of docs/api.md. It is read only by Allowed.
var roleMatrix = map[Role][]Perm{
	RoleViewer:   {PermRead, PermSensitiveRead},
	RoleScript:   {PermRead, PermWrite, PermPublish, PermRun},
	RoleOperator: {PermRead, PermSensitiveRead, PermPrivilegedRead, PermWrite, PermPublish, PermSensitiveWrite, PermRun},
	RoleAdmin:    {PermRead, PermSensitiveRead, PermPrivilegedRead, PermWrite, PermPublish, PermSensitiveWrite, PermAdmin, PermRun},
}

// Allowed reports whether role holds perm. It is the only function that
// decides authorization; everything else asks it. The route-level perms
// PermObjectRead and PermObjectWrite stand for their floor (PermRead,
// PermWrite); the kind-specific perm comes from [ObjectPerm].
func Allowed(role Role, perm Perm) bool {
	switch perm {
	case PermNone:
		return true
	case PermObjectRead:
		perm = PermRead
	case PermObjectWrite:
		perm = PermWrite
	}
	for _, p := range roleMatrix[role] {
		if p == perm {
			return true
		}
	}
	return false
}

// ObjectPerm returns the perm that reading (write false) or writing (write
// true) objects of kind k needs: Sensitive kinds are closed to scripts,
// Secrets are written by operators and admins, AdminOnly kinds by admins.
func ObjectPerm(k *config.Kind, write bool) Perm {
	switch {
	case write && k.AdminOnly:
		return PermAdmin
	case write && k.Sensitive:
		return PermSensitiveWrite
	case write:
		return PermWrite
	case k.Sensitive && k.AdminOnly:
		return PermPrivilegedRead
	case k.Sensitive:
		return PermSensitiveRead
	default:
		return PermRead
	}
}

// Identity is the authenticated caller of a token route.
type Identity struct {
	// Name is the token's name; writes record it as updated_by.
	Name string
	// Role is the token's role.
	Role Role
	// Expires is when the token stops working; zero when it does not.
	Expires time.Time
}

type identityKey struct{}

// IdentityFrom returns the caller that the token middleware put into ctx.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

func withIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// authorize checks that the caller of r holds perm.
func authorize(r *http.Request, perm Perm) error {
	id, ok := IdentityFrom(r.Context())
	if !ok {
		return errUnauthorized("missing bearer token")
	}
	if !Allowed(id.Role, perm) {
		return errForbidden(fmt.Sprintf("role %s may not %s", id.Role, permVerb(perm)))
	}
	return nil
}

// authorizeKind checks that the caller of r may read or write objects of
// kind k.
func authorizeKind(r *http.Request, k *config.Kind, write bool) error {
	id, ok := IdentityFrom(r.Context())
	if !ok {
		return errUnauthorized("missing bearer token")
	}
	if !Allowed(id.Role, ObjectPerm(k, write)) {
		verb := "read"
		if write {
			verb = "write"
		}
		return errForbidden(fmt.Sprintf("role %s may not %s %s objects", id.Role, verb, k.Name))
	}
	return nil
}

func permVerb(p Perm) string {
	switch p {
	case PermRead, PermObjectRead:
		return "read"
	case PermSensitiveRead:
		return "read sensitive objects"
	case PermPrivilegedRead:
		return "read tokens"
	case PermWrite, PermObjectWrite:
		return "write objects"
	case PermPublish:
		return "publish events"
	case PermSensitiveWrite:
		return "write sensitive objects"
	case PermAdmin:
		return "do this (admin only)"
	case PermRun:
		return "run ControlScripts or cancel executions"
	}
	return string(p)
}

// bearer extracts the token from an Authorization header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
