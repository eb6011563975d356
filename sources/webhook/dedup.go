package webhook

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DedupBucket is the KV bucket that remembers delivery ids; each key
// expires after its receiver's dedup_window.
const DedupBucket = "vigil_webhook_dedup"

// Bounds of the dedup bucket.
const (
	// DedupBucketBytes bounds the bucket; when it is full, new deliveries
	// are still accepted but not remembered (a warning is logged).
	DedupBucketBytes = 256 << 20
	dedupMarkerTTL   = time.Minute
)

// dedup remembers delivery keys in a KV bucket with per-key TTLs, so that
// every instance on the same NATS shares them and they outlive JetStream's
// two-minute duplicate window.
type dedup struct {
	kv jetstream.KeyValue
}

func openDedup(ctx context.Context, js jetstream.JetStream, replicas int) (*dedup, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         DedupBucket,
		Description:    "webhook receivers: delivery ids seen, each kept for its receiver's dedup_window",
		History:        1,
		Storage:        jetstream.FileStorage,
		Replicas:       max(replicas, 1),
		MaxBytes:       DedupBucketBytes,
		LimitMarkerTTL: dedupMarkerTTL,
	})
	if err != nil {
		return nil, fmt.Errorf("webhook dedup bucket: %w", err)
	}
	return &dedup{kv: kv}, nil
}

// seen reports whether key was recorded and has not expired.
func (d *dedup) seen(ctx context.Context, key string) (bool, error) {
	_, err := d.kv.Get(ctx, key)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return false, nil
	}
	return false, fmt.Errorf("dedup lookup %s: %w", key, err)
}

// record remembers key for ttl; a key already there is fine (a concurrent
// repeat of the same delivery).
func (d *dedup) record(ctx context.Context, key string, ttl time.Duration) error {
	_, err := d.kv.Create(ctx, key, []byte{'1'}, jetstream.KeyTTL(ttl))
	if err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("dedup record %s: %w", key, err)
	}
	return nil
}
