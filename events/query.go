package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultListLimit and MaxListLimit bound [Bus.List].
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

func (f Filter) consumerConfig(deliverNew bool) jetstream.OrderedConsumerConfig {
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{toJournal(FilterSubject(f.EventID, f.ObjType, f.ObjName))},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
	switch {
	case f.StartSeq > 0:
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = f.StartSeq
	case !f.Since.IsZero():
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		t := f.Since
		cfg.OptStartTime = &t
	case deliverNew:
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	return cfg
}

// List returns up to f.Limit stored events that match f, oldest first, and
// the sequence to pass as StartSeq for the next page (0 when nothing more is
// stored now).
func (b *Bus) List(ctx context.Context, f Filter) ([]Stored, uint64, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	if limit > MaxListLimit {
		limit = MaxListLimit
	}
	cons, err := b.js.OrderedConsumer(ctx, EventsStream, f.consumerConfig(false))
	if err != nil {
		return nil, 0, fmt.Errorf("list events: %w", err)
	}
	out := make([]Stored, 0, min(limit, 64))
	var pending uint64
	for len(out) < limit {
		batch, err := cons.FetchNoWait(limit - len(out))
		if err != nil {
			return nil, 0, fmt.Errorf("list events: %w", err)
		}
		n := 0
		for msg := range batch.Messages() {
			md, err := msg.Metadata()
			if err != nil {
				return nil, 0, fmt.Errorf("list events: %w", err)
			}
			out = append(out, Stored{Seq: md.Sequence.Stream, Data: msg.Data()})
			pending = md.NumPending
			n++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, 0, fmt.Errorf("list events: %w", err)
		}
		if n == 0 || pending == 0 {
			break
		}
	}
	if len(out) == 0 || pending == 0 {
		return out, 0, nil
	}
	return out, out[len(out)-1].Seq + 1, nil
}

// Follow calls fn for each event that matches f, starting at f.StartSeq or
// f.Since, or with the next new event when both are zero, until ctx ends or
// fn returns an error.
func (b *Bus) Follow(ctx context.Context, f Filter, fn func(Stored) error) error {
	cons, err := b.js.OrderedConsumer(ctx, EventsStream, f.consumerConfig(true))
	if err != nil {
		return fmt.Errorf("follow events: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(256))
	if err != nil {
		return fmt.Errorf("follow events: %w", err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return ctx.Err()
			}
			return fmt.Errorf("follow events: %w", err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("follow events: %w", err)
		}
		if err := fn(Stored{Seq: md.Sequence.Stream, Data: msg.Data()}); err != nil {
			return err
		}
	}
}

// MaxRejectedData bounds the payload shown for one rejected message.
const MaxRejectedData = 4 << 10

// Rejected is a message from the ingest subjects that failed validation.
type Rejected struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Subject   string    `json:"subject"` // where it was published, under vigil.ingest
	Reason    string    `json:"reason"`
	Field     string    `json:"field,omitempty"`
	Data      string    `json:"data"` // the payload, cut at MaxRejectedData bytes
	Truncated bool      `json:"truncated,omitempty"`
}

// ListRejected returns up to limit rejected messages from sequence startSeq
// on, oldest first, and the sequence to continue from (0 when nothing more
// is stored now).
func (b *Bus) ListRejected(ctx context.Context, startSeq uint64, limit int) ([]Rejected, uint64, error) {
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if startSeq > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, startSeq
	}
	cons, err := b.js.OrderedConsumer(ctx, RejectedStream, cfg)
	if err != nil {
		return nil, 0, fmt.Errorf("list rejected: %w", err)
	}
	var out []Rejected
	var pending uint64
	for len(out) < limit {
		batch, err := cons.FetchNoWait(limit - len(out))
		if err != nil {
			return nil, 0, fmt.Errorf("list rejected: %w", err)
		}
		n := 0
		for msg := range batch.Messages() {
			md, err := msg.Metadata()
			if err != nil {
				return nil, 0, fmt.Errorf("list rejected: %w", err)
			}
			h := msg.Headers()
			r := Rejected{
				Seq: md.Sequence.Stream, Time: md.Timestamp.UTC(), Subject: h.Get(HeaderOriginalSubject),
				Reason: h.Get(HeaderRejectReason), Field: h.Get(HeaderRejectField),
			}
			data := msg.Data()
			if len(data) > MaxRejectedData {
				data, r.Truncated = data[:MaxRejectedData], true
			}
			r.Data = string(data)
			out = append(out, r)
			pending = md.NumPending
			n++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, 0, fmt.Errorf("list rejected: %w", err)
		}
		if n == 0 || pending == 0 {
			break
		}
	}
	if len(out) == 0 || pending == 0 {
		return out, 0, nil
	}
	return out, out[len(out)-1].Seq + 1, nil
}
