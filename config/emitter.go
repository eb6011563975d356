package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigilhq/vigil/events"
)

// emitterConsumer is the durable consumer of the bucket's stream that turns
// changes into CONFIG_* events.
const emitterConsumer = "vigil-config-events"

// stopGrace bounds how long Stop waits for a change in flight.
const stopGrace = 5 * time.Second

// Publisher stores events; *events.Bus is one.
type Publisher interface {
	Publish(ctx context.Context, ev *events.Event) (events.PublishResult, error)
}

// Emitter publishes CONFIG_CREATE, CONFIG_UPDATE and CONFIG_DELETE for every
// change of the bucket. It reads the bucket's stream through a durable
// consumer and acknowledges a change only after its event is stored, so a
// crash cannot lose one; the event id is derived from the change's sequence,
// so a redelivery is deduplicated.
type Emitter struct {
	store *Store
	pub   Publisher
	log   *slog.Logger
	cc    jetstream.ConsumeContext
	once  sync.Once
}

// NewEmitter returns an emitter for st that publishes through pub.
func NewEmitter(st *Store, pub Publisher, log *slog.Logger) *Emitter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Emitter{store: st, pub: pub, log: log.With("component", "config-events")}
}

// Start begins following the bucket.
func (e *Emitter) Start(ctx context.Context) error {
	cons, err := e.store.js.CreateOrUpdateConsumer(ctx, "KV_"+Bucket, jetstream.ConsumerConfig{
		Durable:       emitterConsumer,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: 1, // in order
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("config events consumer: %w", err)
	}
	e.cc, err = cons.Consume(e.handle)
	if err != nil {
		return fmt.Errorf("config events: %w", err)
	}
	return nil
}

// Stop stops following; unacknowledged changes are delivered again later.
func (e *Emitter) Stop() {
	e.once.Do(func() {
		if e.cc != nil && e.store.nc != nil && !e.store.nc.IsConnected() {
			e.cc.Stop() // the server is gone: nothing can be drained
			return
		}
		if e.cc != nil {
			e.cc.Drain()
			select {
			case <-e.cc.Closed():
			case <-time.After(stopGrace):
				e.cc.Stop() // the server is gone: stop without draining
			}
		}
	})
}

func (e *Emitter) handle(msg jetstream.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ev, err := e.event(ctx, msg)
	if err != nil {
		e.log.Error("build config event", "subject", msg.Subject(), "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	if ev != nil {
		if _, err := e.pub.Publish(ctx, ev); err != nil {
			e.log.Error("publish config event", "subject", msg.Subject(), "err", err)
			_ = msg.NakWithDelay(time.Second)
			return
		}
	}
	_ = msg.Ack()
}

// event builds the CONFIG_* event for one change of the bucket.
func (e *Emitter) event(ctx context.Context, msg jetstream.Msg) (*events.Event, error) {
	md, err := msg.Metadata()
	if err != nil {
		return nil, err
	}
	k := strings.TrimPrefix(msg.Subject(), "$KV."+Bucket+".")
	kindName, name, ok := strings.Cut(k, ".")
	if !ok {
		return nil, nil
	}
	seq := md.Sequence.Stream
	prev, err := e.previous(ctx, k, seq)
	if err != nil {
		return nil, err
	}
	path := "/api/v1/objects/" + kindName + "/" + name
	var (
		id      string
		details map[string]any
		obj     *Object
		user    string
	)
	switch msg.Headers().Get(hdrKVOperation) {
	case "DEL", "PURGE":
		if prev == nil {
			return nil, nil // deleting what was already gone
		}
		obj, user = prev, msg.Headers().Get(HeaderUser)
		id = "CONFIG_DELETE"
		details = map[string]any{
			"path": path, "resource_type": kindName, "resource_name": name,
			"resource_data": e.resourceData(prev), "status": "SUCCESS", "user": user,
		}
	default:
		cur, err := decodeStored(msg.Data(), seq)
		if err != nil {
			return nil, err
		}
		obj, user = cur, cur.Metadata.UpdatedBy
		if prev == nil {
			id = "CONFIG_CREATE"
			details = map[string]any{
				"path": path, "resource_type": kindName, "resource_name": name,
				"resource_data": e.resourceData(cur), "status": "SUCCESS", "user": user,
			}
		} else {
			id = "CONFIG_UPDATE"
			details = map[string]any{
				"path": path, "resource_type": kindName, "resource_name": name,
				"old_resource_data": e.resourceData(prev), "new_resource_data": e.resourceData(cur),
				"resource_data": e.resourceData(cur), "status": "SUCCESS", "user": user,
			}
		}
	}
	ev, err := events.New(id, strings.ToLower(kindName), name, details, "/vigil/config", md.Timestamp)
	if err != nil {
		return nil, err
	}
	ev.ID = fmt.Sprintf("config-%d-%d", md.Timestamp.UnixNano(), seq)
	ev.Data.ObjUUID = obj.Metadata.UUID
	return ev, nil
}

// previous returns the value of key before sequence seq, or nil when the key
// did not exist then (never written, or deleted).
func (e *Emitter) previous(ctx context.Context, key string, seq uint64) (*Object, error) {
	hist, err := e.store.kv.History(ctx, key)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("history of %s: %w", key, err)
	}
	sort.Slice(hist, func(i, j int) bool { return hist[i].Revision() < hist[j].Revision() })
	var prev jetstream.KeyValueEntry
	for _, h := range hist {
		if h.Revision() >= seq {
			break
		}
		prev = h
	}
	if prev == nil || prev.Operation() != jetstream.KeyValuePut {
		return nil, nil
	}
	return decodeStored(prev.Value(), prev.Revision())
}

// resourceData is the Avi-style JSON string of the redacted object.
func (e *Emitter) resourceData(obj *Object) string {
	b, err := json.Marshal(e.store.Redact(obj))
	if err != nil {
		return ""
	}
	return string(b)
}
