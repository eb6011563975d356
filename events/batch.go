package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers of JetStream's atomic batch publish and of conditional writes.
const (
	HeaderExpectedLastSubjSeq = "Nats-Expected-Last-Subject-Sequence"
	HeaderKVOperation         = "KV-Operation"
	headerBatchID             = "Nats-Batch-Id"
	headerBatchSeq            = "Nats-Batch-Sequence"
	headerBatchCommit         = "Nats-Batch-Commit"

	// JetStream error codes for a failed expected-last-subject-sequence.
	errCodeWrongLastSeq         = 10071
	errCodeWrongLastSeqConstant = 10164
)

// ErrWrongLastSequence is wrapped by a write whose expected last subject
// sequence no longer holds: someone else wrote the key meanwhile.
var ErrWrongLastSequence = errors.New("wrong last sequence")

type pubAck struct {
	Stream string `json:"stream"`
	Seq    uint64 `json:"seq"`
	Error  *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

// AtomicPublish writes msgs to one stream (which must allow atomic
// publish) as one batch: all are stored or none. A message may carry
// HeaderExpectedLastSubjSeq; if any such condition fails, nothing is stored
// and the error wraps ErrWrongLastSequence. beforeCommit, when set, runs
// after the batch is staged and before its commit (crash tests use it). It
// returns the sequence of the last message.
func AtomicPublish(ctx context.Context, nc *nats.Conn, msgs []*nats.Msg, beforeCommit func()) (uint64, error) {
	if len(msgs) == 0 {
		return 0, errors.New("empty batch")
	}
	if len(msgs) > 1 {
		batch := uuid.NewString()
		for i, m := range msgs {
			if m.Header == nil {
				m.Header = nats.Header{}
			}
			m.Header.Set(headerBatchID, batch)
			m.Header.Set(headerBatchSeq, strconv.Itoa(i+1))
		}
		msgs[len(msgs)-1].Header.Set(headerBatchCommit, "1")
		for _, m := range msgs[:len(msgs)-1] {
			if err := nc.PublishMsg(m); err != nil {
				return 0, fmt.Errorf("stage batch: %w", err)
			}
		}
		if beforeCommit != nil {
			if err := nc.FlushTimeout(10 * time.Second); err != nil {
				return 0, fmt.Errorf("stage batch: %w", err)
			}
			beforeCommit()
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	reply, err := nc.RequestMsgWithContext(rctx, msgs[len(msgs)-1])
	if err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	var ack pubAck
	if err := json.Unmarshal(reply.Data, &ack); err != nil {
		return 0, fmt.Errorf("commit: bad answer: %w", err)
	}
	if ack.Error != nil {
		if ack.Error.ErrCode == errCodeWrongLastSeq || ack.Error.ErrCode == errCodeWrongLastSeqConstant {
			return 0, fmt.Errorf("commit: %s: %w", ack.Error.Description, ErrWrongLastSequence)
		}
		return 0, fmt.Errorf("commit: %s (jetstream %d)", ack.Error.Description, ack.Error.ErrCode)
	}
	if ack.Seq == 0 {
		return 0, errors.New("commit: no sequence in answer")
	}
	return ack.Seq, nil
}

// KeepInProgress tells JetStream every period that msg is still being
// worked on, so that a long piece of work is not delivered to another
// consumer meanwhile, until the returned function is called.
func KeepInProgress(msg jetstream.Msg, period time.Duration) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				_ = msg.InProgress()
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}
