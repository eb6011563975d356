package actions

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigilhq/vigil/events"
)

// StateBucket is the KV bucket of the rules engine's group states.
const StateBucket = "vigil_alert_state"

// OutcomePrefix starts the keys of action outcomes:
// "_act.<alert id>.<idempotency key>".
const OutcomePrefix = "_act."

// KVStore is a StateStore in a JetStream KV bucket: writes carry the
// revision they read, so engines sharing the event consumer behave as one.
// Keys are "<config>.<base64url of the group key>"; a state carries the
// action requests of its decisions in its outbox until they are queued.
type KVStore struct {
	kv     jetstream.KeyValue
	stream jetstream.Stream
	js     jetstream.JetStream
	ctx    context.Context
}

// OpenKVStore creates or opens the state bucket.
func OpenKVStore(ctx context.Context, js jetstream.JetStream, replicas int) (*KVStore, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      StateBucket,
		Description: "rules engine: windows, throttles and alerts per AlertConfig and group; action requests on their way",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
		// Purged keys leave markers; they go after this long.
		LimitMarkerTTL: markerTTL,
	})
	if err != nil {
		return nil, fmt.Errorf("alert state bucket: %w", err)
	}
	stream, err := js.Stream(ctx, "KV_"+StateBucket)
	if err != nil {
		return nil, fmt.Errorf("alert state bucket: %w", err)
	}
	return &KVStore{kv: kv, stream: stream, js: js, ctx: ctx}, nil
}

func stateKey(config, key string) string {
	return config + "." + base64.RawURLEncoding.EncodeToString([]byte(key))
}

func splitStateKey(k string) (config, key string, ok bool) {
	if strings.HasPrefix(k, "_") {
		return "", "", false
	}
	config, enc, ok := strings.Cut(k, ".")
	if !ok {
		return "", "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(enc)
	return config, string(b), err == nil
}

func (s *KVStore) subject(k string) string { return "$KV." + StateBucket + "." + k }

// Load returns the state and its revision, or nil and the revision of the
// key's delete marker (0 when it never existed).
func (s *KVStore) Load(config, key string) (*GroupState, uint64, error) {
	m, err := s.stream.GetLastMsgForSubject(s.ctx, s.subject(stateKey(config, key)))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	switch m.Header.Get(events.HeaderKVOperation) {
	case "DEL", "PURGE":
		return nil, m.Sequence, nil
	}
	var st GroupState
	if err := json.Unmarshal(m.Data, &st); err != nil {
		return nil, 0, fmt.Errorf("state %s %s: %w", config, key, err)
	}
	return &st, m.Sequence, nil
}

// Save writes st if its revision is still rev.
func (s *KVStore) Save(config, key string, st *GroupState, rev uint64) error {
	_, err := s.SaveRev(config, key, st, rev)
	return err
}

// SaveRev is Save, and returns the state's new revision.
func (s *KVStore) SaveRev(config, key string, st *GroupState, rev uint64) (uint64, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return 0, err
	}
	ack, err := s.js.Publish(s.ctx, s.subject(stateKey(config, key)), b, jetstream.WithExpectLastSequencePerSubject(rev))
	if events.KVConflict(err) {
		return 0, fmt.Errorf("%s %s: %w", config, key, ErrConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", config, key, err)
	}
	return ack.Sequence, nil
}

// markerTTL is how long the marker of a removed key stays.
const markerTTL = time.Minute

// Delete removes a state.
func (s *KVStore) Delete(config, key string) error {
	return s.kv.Purge(s.ctx, stateKey(config, key), jetstream.PurgeTTL(markerTTL))
}

// Range calls f for every state of config ("": of every config).
func (s *KVStore) Range(config string, f func(config, key string, st *GroupState) bool) error {
	filter := ">"
	if config != "" {
		filter = config + ".>"
	}
	w, err := s.kv.Watch(s.ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		return err
	}
	defer w.Stop() //nolint:errcheck // a read-only watch
	for e := range w.Updates() {
		if e == nil {
			break
		}
		config, key, ok := splitStateKey(e.Key())
		if !ok {
			continue
		}
		var st GroupState
		if json.Unmarshal(e.Value(), &st) != nil {
			continue
		}
		if !f(config, key, &st) {
			break
		}
	}
	return nil
}

// IndexPrefix starts the keys that find an alert's group by the alert's
// id: "_idx.<alert id>", whose value is the group's state key.
const IndexPrefix = "_idx."

// PutIndex records where the alert with this id lives; it goes after ttl.
func (s *KVStore) PutIndex(alertID, config, key string, ttl time.Duration) error {
	if _, err := s.js.Publish(s.ctx, s.subject(IndexPrefix+alertID), []byte(stateKey(config, key)), jetstream.WithMsgTTL(ttl)); err != nil {
		return fmt.Errorf("index %s: %w", alertID, err)
	}
	return nil
}

// LookupIndex returns the config and group key of an alert id recorded by
// PutIndex; ok is false when there is none.
func (s *KVStore) LookupIndex(alertID string) (config, key string, ok bool) {
	e, err := s.kv.Get(s.ctx, IndexPrefix+alertID)
	if err != nil {
		return "", "", false
	}
	return splitStateKey(string(e.Value()))
}

// PutOutcome writes an action's outcome; it goes after ttl.
func (s *KVStore) PutOutcome(alertID string, o ActionOutcome, ttl time.Duration) error {
	b, err := json.Marshal(&o)
	if err != nil {
		return err
	}
	if _, err := s.js.Publish(s.ctx, s.subject(OutcomePrefix+alertID+"."+o.Key), b, jetstream.WithMsgTTL(ttl)); err != nil {
		return fmt.Errorf("outcome %s: %w", o.Key, err)
	}
	return nil
}

// Outcomes returns the outcomes of an alert's actions, oldest first.
func (s *KVStore) Outcomes(alertID string) ([]ActionOutcome, error) {
	w, err := s.kv.Watch(s.ctx, OutcomePrefix+alertID+".>", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer w.Stop() //nolint:errcheck // a read-only watch
	var out []ActionOutcome
	for e := range w.Updates() {
		if e == nil {
			break
		}
		var o ActionOutcome
		if json.Unmarshal(e.Value(), &o) == nil {
			out = append(out, o)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, nil
}
