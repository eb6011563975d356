package controller

import (
	"context"
	"fmt"
	"time"

	"github.com/vigilhq/vigil/config"
)

// IssueToken creates a token with role that expires after ttl, usable at
// once, and returns its value with a function that revokes it. The runner
// uses it for each execution's own token.
func (a *API) IssueToken(ctx context.Context, name string, role Role, ttl time.Duration, createdBy string) (string, func(), error) {
	plain, hash, err := NewToken()
	if err != nil {
		return "", nil, err
	}
	expires := a.now().Add(ttl).UTC().Truncate(time.Second)
	obj := TokenObject(name, string(role), hash, createdBy, expires, "issued for "+createdBy)
	zero := uint64(0)
	obj.Metadata.Revision = &zero
	res, err := a.store.Apply(ctx, []*config.Object{obj}, config.ApplyOptions{User: createdBy, Internal: true})
	if err != nil {
		return "", nil, fmt.Errorf("issue token %s: %w", name, err)
	}
	rev := uint64(0)
	if len(res) == 1 {
		rev = res[0].Revision
	}
	a.tokens.put(&tokenEntry{id: Identity{Name: name, Role: role, Expires: expires}, hash: hash, rev: rev}, true)
	revoke := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := a.store.Delete(ctx, []config.Ref{{Kind: TokenKind, Name: name}},
			config.DeleteOptions{User: createdBy, Internal: true, IgnoreMissing: true})
		if err != nil {
			a.log.Error("revoke issued token", "token", name, "err", err)
		}
		rev := uint64(0)
		if len(res) == 1 {
			rev = res[0].Revision
		}
		a.tokens.remove(name, rev, true)
	}
	return plain, revoke, nil
}
