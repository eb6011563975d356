package actions

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// StateBucket is the KV bucket of the rules engine's group states.
const StateBucket = "vigil_alert_state"

// KVStore is a StateStore in a JetStream KV bucket: writes carry the
// revision they read, so engines sharing the event consumer behave as one.
// Keys are "<config>.<base64url of the group key>".
type KVStore struct {
	kv  jetstream.KeyValue
	ctx context.Context
}

// OpenKVStore creates or opens the state bucket.
func OpenKVStore(ctx context.Context, js jetstream.JetStream, replicas int) (*KVStore, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      StateBucket,
		Description: "rules engine: windows, throttles and alerts per AlertConfig and group",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("alert state bucket: %w", err)
	}
	return &KVStore{kv: kv, ctx: ctx}, nil
}

func stateKey(config, key string) string {
	return config + "." + base64.RawURLEncoding.EncodeToString([]byte(key))
}

func splitStateKey(k string) (config, key string, ok bool) {
	config, enc, ok := strings.Cut(k, ".")
	if !ok {
		return "", "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(enc)
	return config, string(b), err == nil
}

// Load returns the state and its revision, or nil and 0.
func (s *KVStore) Load(config, key string) (*GroupState, uint64, error) {
	e, err := s.kv.Get(s.ctx, stateKey(config, key))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var st GroupState
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return nil, 0, fmt.Errorf("state %s %s: %w", config, key, err)
	}
	return &st, e.Revision(), nil
}

// Save writes st if the revision is still rev (0: if there is none).
func (s *KVStore) Save(config, key string, st *GroupState, rev uint64) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	k := stateKey(config, key)
	if rev == 0 {
		_, err = s.kv.Create(s.ctx, k, b)
	} else {
		_, err = s.kv.Update(s.ctx, k, b, rev)
	}
	var apiErr *jetstream.APIError
	if errors.Is(err, jetstream.ErrKeyExists) || (errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)) {
		return fmt.Errorf("%s %s: %w", config, key, ErrConflict)
	}
	return err
}

// Delete removes a state.
func (s *KVStore) Delete(config, key string) error {
	return s.kv.Purge(s.ctx, stateKey(config, key))
}

// Range calls f for every state.
func (s *KVStore) Range(f func(config, key string, st *GroupState) bool) error {
	lister, err := s.kv.ListKeys(s.ctx)
	if err != nil {
		return err
	}
	defer lister.Stop() //nolint:errcheck // a read-only listing
	for k := range lister.Keys() {
		config, key, ok := splitStateKey(k)
		if !ok {
			continue
		}
		st, _, err := s.Load(config, key)
		if err != nil || st == nil {
			continue
		}
		if !f(config, key, st) {
			break
		}
	}
	return nil
}
