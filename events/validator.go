package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers on rejected messages.
const (
	HeaderRejectReason    = "Vigil-Reject-Reason"
	HeaderRejectField     = "Vigil-Reject-Field"
	HeaderOriginalSubject = "Vigil-Original-Subject"
)

// stopGrace bounds how long Stop waits for messages in flight.
const stopGrace = 5 * time.Second

// validatorConsumer is the durable consumer of the ingest stream.
const validatorConsumer = "vigil-validator"

// Validator moves what NATS clients publish on vigil.ingest.> to the events
// stream, or to the rejected stream with the reason. It acknowledges an
// ingested message only after the event or the rejection is stored, so a
// crash delivers it again; the event's id deduplicates the repeat.
type Validator struct {
	bus  *Bus
	log  *slog.Logger
	now  func() time.Time
	cc   jetstream.ConsumeContext
	once sync.Once
	done chan struct{}

	// OnResult, when set, is called after each message with the event id
	// (empty when the message was rejected) and the rejection error.
	OnResult func(eventID string, rejected error)
	// IDs, when set, remembers the ids producers gave beyond the duplicate
	// window: a message whose id it knows is acknowledged and not stored
	// again. Set it before Start.
	IDs *IDs
}

// NewValidator returns a validator for bus. now may be nil.
func NewValidator(bus *Bus, log *slog.Logger, now func() time.Time) *Validator {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Validator{bus: bus, log: log.With("component", "validator"), now: now, done: make(chan struct{})}
}

// Start begins consuming the ingest stream.
func (v *Validator) Start(ctx context.Context) error {
	cons, err := v.bus.js.CreateOrUpdateConsumer(ctx, IngestStream, jetstream.ConsumerConfig{
		Durable:       validatorConsumer,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: 4096,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("validator consumer: %w", err)
	}
	v.cc, err = cons.Consume(v.handle, jetstream.PullMaxMessages(512))
	if err != nil {
		return fmt.Errorf("validator consume: %w", err)
	}
	return nil
}

// Stop stops consuming; messages in flight are delivered again later.
func (v *Validator) Stop() {
	v.once.Do(func() {
		if v.cc != nil && v.bus.nc != nil && !v.bus.nc.IsConnected() {
			v.cc.Stop() // the server is gone: nothing can be drained
			v.cc = nil
		}
		if v.cc != nil {
			v.cc.Drain()
			select {
			case <-v.cc.Closed():
			case <-time.After(stopGrace):
				v.cc.Stop() // the server is gone: stop without draining
			}
		}
		close(v.done)
	})
}

func (v *Validator) handle(msg jetstream.Msg) {
	tail := url.PathEscape(strings.TrimPrefix(msg.Subject(), IngestPrefix+"."))
	if len(tail) > 200 {
		tail = tail[:200]
		if i := strings.LastIndexByte(tail, '%'); i >= len(tail)-2 {
			tail = tail[:i] // do not split an escape
		}
	}
	source := "/nats/" + tail
	ev, err := Decode(msg.Data(), source, v.now())
	given := err == nil && v.IDs != nil && IDGiven(msg.Data())
	if given && v.seen(ev) {
		_ = msg.Ack()
		if v.OnResult != nil {
			v.OnResult(ev.Data.EventID, nil)
		}
		return
	}
	var f jetstream.PubAckFuture
	if err == nil {
		f, err = v.bus.PublishAsync(ev)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				// The bus is failing: leave the message for redelivery.
				v.log.Error("publish ingested event", "err", err)
				_ = msg.NakWithDelay(time.Second)
				return
			}
		}
	}
	if err != nil {
		v.reject(msg, err)
		return
	}
	go func() {
		select {
		case ack := <-f.Ok():
			if given && !ack.Duplicate {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if err := v.IDs.Remember(ctx, ev.ID, ack.Sequence); err != nil {
					v.log.Warn("remember event id", "id", ev.ID, "err", err)
				}
				cancel()
			}
			_ = msg.Ack()
			if v.OnResult != nil {
				v.OnResult(ev.Data.EventID, nil)
			}
		case perr := <-f.Err():
			v.log.Error("store ingested event", "id", ev.ID, "err", perr)
			_ = msg.NakWithDelay(time.Second)
		case <-v.done:
		}
	}()
}

// seen reports whether an event with ev's id was stored within IDsTTL. A
// failed lookup is logged and counts as not seen: the window still holds.
func (v *Validator) seen(ev *Event) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, ok, err := v.IDs.Lookup(ctx, ev.ID)
	if err != nil {
		v.log.Warn("event id lookup", "id", ev.ID, "err", err)
	}
	return ok
}

func (v *Validator) reject(msg jetstream.Msg, reason error) {
	out := &nats.Msg{
		Subject: RejectedPrefix + strings.TrimPrefix(msg.Subject(), IngestPrefix),
		Data:    msg.Data(),
		Header:  nats.Header{},
	}
	for k, vals := range msg.Headers() {
		if strings.HasPrefix(k, "Nats-") {
			continue
		}
		out.Header[k] = vals
	}
	out.Header.Set(HeaderRejectReason, headerSafe(reason.Error()))
	out.Header.Set(HeaderOriginalSubject, msg.Subject())
	var fe *FieldError
	if errors.As(reason, &fe) {
		out.Header.Set(HeaderRejectField, headerSafe(fe.Field))
	}
	md, err := msg.Metadata()
	if err == nil {
		out.Header.Set(nats.MsgIdHdr, fmt.Sprintf("ingest-%d", md.Sequence.Stream))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := v.bus.js.PublishMsg(ctx, out, jetstream.WithExpectStream(RejectedStream)); err != nil {
		v.log.Error("store rejected message", "subject", msg.Subject(), "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	v.log.Info("rejected ingested message", "subject", msg.Subject(), "reason", reason.Error())
	_ = msg.Ack()
	if v.OnResult != nil {
		v.OnResult("", reason)
	}
}

// headerSafe makes s fit in one NATS header value.
func headerSafe(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	if len(s) > 1024 {
		s = s[:1024]
	}
	return s
}
