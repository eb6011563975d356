package controller

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"

	"github.com/vigilhq/vigil/runner"
)

// ExecTokenPrefix starts the token of one execution. Such a token is the
// execution id signed with a key only vigil holds; it is valid while that
// execution is running, and nothing is stored for it.
const ExecTokenPrefix = "vgx_"

// sigLen is the length of an HMAC-SHA256 in unpadded base64url.
const sigLen = 43

// ExecutionToken returns the token of execution id, or "" when the API has
// no key for execution tokens.
func (a *API) ExecutionToken(id string) string {
	if len(a.execKey) == 0 {
		return ""
	}
	return ExecTokenPrefix + id + "_" + a.execSig(id)
}

func (a *API) execSig(id string) string {
	m := hmac.New(sha256.New, a.execKey)
	m.Write([]byte(id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// execIdentity checks an execution token: a valid signature, and an
// execution that is running now.
func (a *API) execIdentity(ctx context.Context, plain string) (Identity, error) {
	// The signature is the last sigLen characters (base64url may hold '_').
	rest := strings.TrimPrefix(plain, ExecTokenPrefix)
	i := len(rest) - sigLen - 1
	if len(a.execKey) == 0 || a.runner == nil || i <= 0 || rest[i] != '_' {
		return Identity{}, errUnauthorized("unknown token")
	}
	id, sig := rest[:i], rest[i+1:]
	if !hmac.Equal([]byte(sig), []byte(a.execSig(id))) {
		return Identity{}, errUnauthorized("unknown token")
	}
	ex, err := a.runner.Get(ctx, id)
	if err != nil || ex.Status != runner.StatusRunning {
		return Identity{}, errUnauthorized("the execution of this token is not running")
	}
	return Identity{Name: id, Role: RoleScript}, nil
}
