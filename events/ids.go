package events

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// IDsBucket is the KV bucket that remembers the ids producers gave their
// events, for IDsTTL: far longer than JetStream's DuplicateWindow, so that
// a producer repeating an event hours later (a script run again, a client
// retrying after an outage) stores it once.
const IDsBucket = "vigil_event_ids"

// Bounds of the ids bucket.
const (
	IDsTTL = 24 * time.Hour
	// IDsBucketBytes bounds the bucket; when it is full, events are still
	// stored, and their ids deduplicated only within DuplicateWindow.
	IDsBucketBytes = 256 << 20
)

// IDs remembers, per event id, the stream sequence of the stored event.
type IDs struct {
	kv jetstream.KeyValue
}

// OpenIDs opens (or creates) the ids bucket.
func OpenIDs(ctx context.Context, js jetstream.JetStream, replicas int) (*IDs, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      IDsBucket,
		Description: "event ids that producers gave, with the sequence of the stored event; each kept 24h",
		History:     1,
		TTL:         IDsTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
		MaxBytes:    IDsBucketBytes,
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", IDsBucket, err)
	}
	return &IDs{kv: kv}, nil
}

// IDGiven reports whether an event's JSON may name its id. It errs on the
// side of yes (a key "id" inside the details counts too): a wrong yes only
// costs a lookup.
func IDGiven(raw []byte) bool { return bytes.Contains(raw, []byte(`"id"`)) }

// idKey is an id as a KV key: ids may hold any character.
func idKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:16])
}

// Lookup returns the sequence of the event stored with id, if one was
// remembered within IDsTTL.
func (l *IDs) Lookup(ctx context.Context, id string) (uint64, bool, error) {
	e, err := l.kv.Get(ctx, idKey(id))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("look up event id %q: %w", id, err)
	}
	seq, err := strconv.ParseUint(string(e.Value()), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("event id %q: stored sequence %q: %w", id, e.Value(), err)
	}
	return seq, true, nil
}

// Remember records that the event with id is stored at seq. An id already
// remembered (a concurrent repeat) is left as it is.
func (l *IDs) Remember(ctx context.Context, id string, seq uint64) error {
	_, err := l.kv.Create(ctx, idKey(id), strconv.AppendUint(nil, seq, 10))
	if err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("remember event id %q: %w", id, err)
	}
	return nil
}
