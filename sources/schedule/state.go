package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigilhq/vigil/events"
)

// The KV buckets of the scheduler.
const (
	// SlotsBucket holds one claim per fired slot, "<schedule>.<slot unix
	// ns>", each with a TTL: the instance whose create succeeds fires it.
	SlotsBucket = "vigil_schedule_slots"
	// StateBucket holds each schedule's State (its last run), keyed by
	// its name.
	StateBucket = "vigil_schedule_state"
)

// markerTTL is how long the marker of an expired or removed key stays.
const markerTTL = time.Minute

// Run is one fired slot of a schedule, as recorded in StateBucket.
type Run struct {
	// Slot is the slot's time; Time is when it ran.
	Slot time.Time `json:"slot"`
	Time time.Time `json:"time"`
	// Status is succeeded or failed.
	Status string `json:"status"`
	// Action is controlscript or publish_event.
	Action string `json:"action"`
	// ExecutionID is the ControlScript's execution; EventID the
	// published event's CloudEvents id.
	ExecutionID string `json:"execution_id,omitempty"`
	EventID     string `json:"event_id,omitempty"`
	// Error says why the action failed.
	Error string `json:"error,omitempty"`
	// Missed is true when the slot ran late, under the missed policy.
	Missed bool `json:"missed,omitempty"`
	// Instance is the vigil instance that ran it.
	Instance string `json:"instance,omitempty"`
}

// The statuses of a Run.
const (
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
)

// claim is the value of a slot's key.
type claim struct {
	Instance string    `json:"instance"`
	Claimed  time.Time `json:"claimed"`
	// Done is set once the action ran and its run is recorded.
	Done   bool   `json:"done,omitempty"`
	Status string `json:"status,omitempty"`
}

// store is the scheduler's view of its two buckets.
type store struct {
	js    jetstream.JetStream
	slots jetstream.KeyValue
	state jetstream.KeyValue
}

func openStore(ctx context.Context, js jetstream.JetStream, replicas int) (*store, error) {
	slots, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         SlotsBucket,
		Description:    "schedules: the instance that claimed each slot; keys expire",
		History:        1,
		Storage:        jetstream.FileStorage,
		Replicas:       max(replicas, 1),
		LimitMarkerTTL: markerTTL,
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", SlotsBucket, err)
	}
	state, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         StateBucket,
		Description:    "schedules: the last run of each schedule",
		History:        1,
		Storage:        jetstream.FileStorage,
		Replicas:       max(replicas, 1),
		LimitMarkerTTL: markerTTL,
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", StateBucket, err)
	}
	return &store{js: js, slots: slots, state: state}, nil
}

// claim takes the slot's key for c.Instance and returns the claim's
// revision, or 0 when another instance holds it. A claim whose holder did
// not finish within stale is abandoned (its instance died between claim
// and record): it is taken over by a write conditional on its revision, so
// again one instance wins.
func (st *store) claim(ctx context.Context, key string, c claim, ttl, stale time.Duration) (uint64, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return 0, err
	}
	rev, err := st.slots.Create(ctx, key, b, jetstream.KeyTTL(ttl))
	if err == nil {
		return rev, nil
	}
	if !events.KVConflict(err) {
		return 0, fmt.Errorf("claim %s: %w", key, err)
	}
	e, err := st.slots.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil // it expired in between: long gone
	}
	if err != nil {
		return 0, fmt.Errorf("claim %s: %w", key, err)
	}
	var held claim
	if json.Unmarshal(e.Value(), &held) == nil && (held.Done || c.Claimed.Sub(held.Claimed) < stale) {
		return 0, nil
	}
	return st.rewrite(ctx, key, b, e.Revision(), ttl)
}

// rewrite replaces the claim at revision rev; 0 when it changed since.
func (st *store) rewrite(ctx context.Context, key string, b []byte, rev uint64, ttl time.Duration) (uint64, error) {
	ack, err := st.js.Publish(ctx, "$KV."+SlotsBucket+"."+key, b,
		jetstream.WithMsgTTL(ttl), jetstream.WithExpectLastSequencePerSubject(rev))
	if events.KVConflict(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("claim %s: %w", key, err)
	}
	return ack.Sequence, nil
}

// finish marks the claim at rev done.
func (st *store) finish(ctx context.Context, key string, c claim, rev uint64, ttl time.Duration) error {
	c.Done = true
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	n, err := st.rewrite(ctx, key, b, rev, ttl)
	if err == nil && n == 0 {
		return fmt.Errorf("finish %s: taken over by another instance", key)
	}
	return err
}

// State is a schedule's record in StateBucket.
type State struct {
	// LastRun is the latest slot that ran.
	LastRun *Run `json:"last_run,omitempty"`
	// Handled is the time up to which an instance that started dealt with
	// the slots missed before it: ran them by the policy or passed them
	// over. An instance that starts later counts missed slots from here,
	// so catch_up runs at most its limit however many instances start.
	Handled time.Time `json:"handled,omitzero"`
}

// floor is the time after which slots may have been missed.
func (st *State) floor() time.Time {
	if st == nil {
		return time.Time{}
	}
	f := st.Handled
	if st.LastRun != nil && st.LastRun.Slot.After(f) {
		f = st.LastRun.Slot
	}
	return f
}

// update changes a schedule's state with f, in writes conditional on the
// revision read; f returns false to leave it as it is.
func (st *store) update(ctx context.Context, name string, f func(*State) bool) error {
	for range 8 {
		var cur State
		var rev uint64 // 0: no state yet
		e, err := st.state.Get(ctx, name)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("state %s: %w", name, err)
		default:
			rev = e.Revision()
			if err := json.Unmarshal(e.Value(), &cur); err != nil {
				cur = State{} // unreadable: replaced
			}
		}
		if !f(&cur) {
			return nil
		}
		b, err := json.Marshal(&cur)
		if err != nil {
			return err
		}
		if rev == 0 {
			_, err = st.state.Create(ctx, name, b)
		} else {
			_, err = st.state.Update(ctx, name, b, rev)
		}
		if err == nil {
			return nil
		}
		if !events.KVConflict(err) {
			return fmt.Errorf("state %s: %w", name, err)
		}
	}
	return fmt.Errorf("state %s: too many concurrent writes", name)
}

// record writes r as the schedule's last run unless a later slot is
// already recorded.
func (st *store) record(ctx context.Context, name string, r *Run) error {
	return st.update(ctx, name, func(s *State) bool {
		if s.LastRun != nil && s.LastRun.Slot.After(r.Slot) {
			return false
		}
		s.LastRun = r
		return true
	})
}

// handled records that the slots missed up to t are dealt with.
func (st *store) handled(ctx context.Context, name string, t time.Time) error {
	return st.update(ctx, name, func(s *State) bool {
		if !t.After(s.Handled) {
			return false
		}
		s.Handled = t
		return true
	})
}

// forget removes a deleted schedule's last run.
func (st *store) forget(ctx context.Context, name string) error {
	if err := st.state.Purge(ctx, name, jetstream.PurgeTTL(markerTTL)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("forget %s: %w", name, err)
	}
	return nil
}

// LastRun reads a schedule's last run from StateBucket, for tools and
// tests; nil when none is recorded.
func LastRun(ctx context.Context, js jetstream.JetStream, name string) (*Run, error) {
	kv, err := js.KeyValue(ctx, StateBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("last run %s: %w", name, err)
	}
	e, err := kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("last run %s: %w", name, err)
	}
	var st State
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return nil, fmt.Errorf("last run %s: %w", name, err)
	}
	return st.LastRun, nil
}
