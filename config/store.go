package config

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigilhq/vigil/events"
)

// Bucket is the JetStream KV bucket that holds every object; its stream is
// "KV_" + Bucket. Keys are "<Kind>.<name>".
const Bucket = "vigil_config"

// Limits of the store.
const (
	// MaxBatch is the most objects one Apply or Delete writes.
	MaxBatch = 1000
	// MaxObjectSize bounds one stored object.
	MaxObjectSize = 1 << 20
	// DefaultHistory is how many revisions of each object are kept.
	DefaultHistory = 8
	// MaxBucketBytes bounds the config bucket, history included.
	MaxBucketBytes = 1 << 30
)

// HeaderUser carries the user on a delete marker, which has no body.
const HeaderUser = "Vigil-User"

const (
	hdrExpectedLastSubjSeq = events.HeaderExpectedLastSubjSeq
	hdrKVOperation         = events.HeaderKVOperation
)

// StoreOptions configures [OpenStore].
type StoreOptions struct {
	// Registry validates objects; default the process-wide Kinds.
	Registry *Registry
	// Cipher seals Secrets; without one, Secrets are refused.
	Cipher Cipher
	// Now is the clock; default time.Now.
	Now func() time.Time
	// History is how many revisions of an object are kept; default 8.
	History int
	// Replicas of the bucket's stream on a cluster; default 1.
	Replicas int
	Logger   *slog.Logger
	// BeforeCommit, when set, runs after a batch is staged and before it is
	// committed. Fault-injection tests use it to stop the server mid-apply.
	BeforeCommit func()
}

// Store keeps objects in a JetStream KV bucket. Every write is
// compare-and-set on the per-key sequence, and a batch is written with
// JetStream's atomic batch publish, so it lands whole or not at all.
type Store struct {
	opts   StoreOptions
	reg    *Registry
	nc     *nats.Conn
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	stream jetstream.Stream
	log    *slog.Logger
}

// OpenStore creates or opens the config bucket.
func OpenStore(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, opts StoreOptions) (*Store, error) {
	if opts.Registry == nil {
		opts.Registry = Kinds
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.History <= 0 {
		opts.History = DefaultHistory
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:       Bucket,
		Description:  "vigil objects",
		History:      uint8(opts.History),
		MaxValueSize: MaxObjectSize,
		MaxBytes:     MaxBucketBytes,
		Storage:      jetstream.FileStorage,
		Replicas:     opts.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("config bucket: %w", err)
	}
	stream, err := js.Stream(ctx, "KV_"+Bucket)
	if err != nil {
		return nil, fmt.Errorf("config bucket stream: %w", err)
	}
	if cfg := stream.CachedInfo().Config; !cfg.AllowAtomicPublish {
		cfg.AllowAtomicPublish = true
		if stream, err = js.UpdateStream(ctx, cfg); err != nil {
			return nil, fmt.Errorf("config bucket: enable atomic batches: %w", err)
		}
	}
	return &Store{
		opts: opts, reg: opts.Registry, nc: nc, js: js, kv: kv, stream: stream,
		log: opts.Logger.With("component", "store"),
	}, nil
}

// Registry returns the registry the store validates with.
func (s *Store) Registry() *Registry { return s.reg }

// Cipher returns the cipher that seals Secrets (nil when none).
func (s *Store) Cipher() Cipher { return s.opts.Cipher }

func key(kind, name string) string { return kind + "." + name }

func (s *Store) subject(kind, name string) string { return "$KV." + Bucket + "." + key(kind, name) }

// stored is the last message for a key: the object (nil when absent or
// deleted) and the key's last sequence (0 when never written).
type stored struct {
	obj *Object
	seq uint64
}

func (s *Store) load(ctx context.Context, kind, name string) (stored, error) {
	msg, err := s.stream.GetLastMsgForSubject(ctx, s.subject(kind, name))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return stored{}, nil
	}
	if err != nil {
		return stored{}, fmt.Errorf("read %s/%s: %w", kind, name, err)
	}
	st := stored{seq: msg.Sequence}
	if op := msg.Header.Get(hdrKVOperation); op == "DEL" || op == "PURGE" {
		return st, nil
	}
	obj, err := decodeStored(msg.Data, msg.Sequence)
	if err != nil {
		return stored{}, fmt.Errorf("read %s/%s: %w", kind, name, err)
	}
	st.obj = obj
	return st, nil
}

func decodeStored(data []byte, rev uint64) (*Object, error) {
	var obj Object
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("decode stored object: %w", err)
	}
	r := rev
	obj.Metadata.Revision = &r
	return &obj, nil
}

func (s *Store) kind(kindName string) (*Kind, error) {
	k, ok := s.reg.Lookup(kindName)
	if !ok {
		return nil, &FieldError{Object: kindName, Field: "kind", Message: fmt.Sprintf("unknown kind %q", kindName), Err: ErrUnknownKind}
	}
	return k, nil
}

// Get returns the stored object, or an error wrapping ErrNotFound.
func (s *Store) Get(ctx context.Context, kind, name string) (*Object, error) {
	k, err := s.kind(kind)
	if err != nil {
		return nil, err
	}
	if err := ValidateName(name); err != nil {
		return nil, &NotFoundError{Object: k.Name + "/" + name}
	}
	st, err := s.load(ctx, k.Name, name)
	if err != nil {
		return nil, err
	}
	if st.obj == nil {
		return nil, &NotFoundError{Object: k.Name + "/" + name}
	}
	return st.obj, nil
}

// List returns the objects of a kind sorted by name.
func (s *Store) List(ctx context.Context, kind string) ([]*Object, error) {
	k, err := s.kind(kind)
	if err != nil {
		return nil, err
	}
	w, err := s.kv.WatchFiltered(ctx, []string{k.Name + ".>"}, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", k.Name, err)
	}
	defer w.Stop()
	var out []*Object
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("list %s: watcher closed", k.Name)
			}
			if e == nil {
				sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
				return out, nil
			}
			obj, err := decodeStored(e.Value(), e.Revision())
			if err != nil {
				return nil, fmt.Errorf("list %s: %s: %w", k.Name, e.Key(), err)
			}
			out = append(out, obj)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Redact returns a copy of obj that is safe to show.
func (s *Store) Redact(obj *Object) *Object {
	if obj == nil {
		return nil
	}
	cp := *obj
	if k, ok := s.reg.Lookup(obj.Kind); ok && k.Redact != nil {
		cp.Spec = k.Redact(obj.Spec)
	}
	return &cp
}

// plan is one object's write.
type plan struct {
	res Result
	msg *nats.Msg // nil when unchanged
}

// Apply validates objs and writes them as one atomic batch: an invalid
// object, a stale revision or a crash leaves none of them written. Objects
// without a revision are upserts; the caller's objects are not modified.
func (s *Store) Apply(ctx context.Context, objs []*Object, opts ApplyOptions) ([]Result, error) {
	if len(objs) > MaxBatch {
		return nil, fmt.Errorf("%d objects: %w (at most %d)", len(objs), ErrTooMany, MaxBatch)
	}
	work := make([]*Object, len(objs))
	kinds := make([]*Kind, len(objs))
	seen := make(map[string]int, len(objs))
	for i, o := range objs {
		c := *o
		c.Spec = bytes.Clone(o.Spec)
		if err := s.reg.Validate(&c); err != nil {
			return nil, err
		}
		k, _ := s.reg.Lookup(c.Kind)
		id := c.Kind + "/" + c.Name
		if k.Internal && !opts.Internal {
			return nil, &FieldError{Object: id, Field: "kind", Message: fmt.Sprintf("%s objects are managed by vigil, not applied", k.Name)}
		}
		if j, dup := seen[id]; dup {
			return nil, &FieldError{Object: id, Field: "name", Message: fmt.Sprintf("appears twice in one batch (objects %d and %d)", j+1, i+1)}
		}
		seen[id] = i
		work[i], kinds[i] = &c, k
	}
	return s.write(ctx, len(work), func(i int) (plan, error) { return s.planPut(ctx, work[i], kinds[i], opts) }, opts.DryRun)
}

// Delete deletes the named objects as one atomic batch.
func (s *Store) Delete(ctx context.Context, refs []Ref, opts DeleteOptions) ([]Result, error) {
	if len(refs) > MaxBatch {
		return nil, fmt.Errorf("%d objects: %w (at most %d)", len(refs), ErrTooMany, MaxBatch)
	}
	work := make([]Ref, len(refs))
	seen := make(map[string]bool, len(refs))
	for i, r := range refs {
		kd, err := s.kind(r.Kind)
		if err != nil {
			var fe *FieldError
			if errors.As(err, &fe) {
				fe.Object = r.String()
			}
			return nil, err
		}
		r.Kind = kd.Name
		if kd.Internal && !opts.Internal {
			return nil, &FieldError{Object: r.String(), Field: "kind", Message: fmt.Sprintf("%s objects are managed by vigil, not deleted directly", kd.Name)}
		}
		if err := ValidateName(r.Name); err != nil {
			return nil, &FieldError{Object: r.String(), Field: "name", Message: err.Error()}
		}
		if seen[r.String()] {
			return nil, &FieldError{Object: r.String(), Field: "name", Message: "appears twice in one batch"}
		}
		seen[r.String()] = true
		work[i] = r
	}
	return s.write(ctx, len(work), func(i int) (plan, error) { return s.planDelete(ctx, work[i], opts) }, opts.DryRun)
}

// write plans each object against the stored state and commits the batch.
// A concurrent write to one of the keys makes the commit fail; the batch is
// then planned again, so upserts win and explicit revisions get a conflict.
func (s *Store) write(ctx context.Context, n int, planOne func(i int) (plan, error), dryRun bool) ([]Result, error) {
	const attempts = 5
	for attempt := 1; ; attempt++ {
		plans := make([]plan, n)
		var msgs []*nats.Msg
		for i := range n {
			p, err := planOne(i)
			if err != nil {
				return nil, err
			}
			plans[i] = p
			if p.msg != nil {
				msgs = append(msgs, p.msg)
			}
		}
		results := make([]Result, n)
		for i := range plans {
			results[i] = plans[i].res
		}
		if dryRun || len(msgs) == 0 {
			return results, nil
		}
		last, err := s.commit(ctx, msgs)
		if errors.Is(err, errStale) && attempt < attempts {
			continue
		}
		if errors.Is(err, errStale) {
			return nil, fmt.Errorf("commit: %w: objects kept changing", ErrConflict)
		}
		if err != nil {
			return nil, err
		}
		// A committed batch is stored at consecutive sequences ending at last.
		seq := last - uint64(len(msgs)) + 1
		for i := range plans {
			if plans[i].msg == nil {
				continue
			}
			results[i].Revision = seq
			if results[i].Object != nil {
				r := seq
				results[i].Object.Metadata.Revision = &r
			}
			seq++
		}
		return results, nil
	}
}

func (s *Store) planPut(ctx context.Context, obj *Object, kd *Kind, opts ApplyOptions) (plan, error) {
	id := obj.Kind + "/" + obj.Name
	st, err := s.load(ctx, obj.Kind, obj.Name)
	if err != nil {
		return plan{}, err
	}
	cur := st.obj
	if want := obj.Metadata.Revision; want != nil {
		if *want == 0 && cur != nil {
			return plan{}, &ConflictError{Object: id, Expected: 0, Actual: cur.Rev()}
		}
		if *want != 0 && (cur == nil || cur.Rev() != *want) {
			actual := uint64(0)
			if cur != nil {
				actual = cur.Rev()
			}
			return plan{}, &ConflictError{Object: id, Expected: *want, Actual: actual}
		}
	}
	spec := obj.Spec
	if kd.Seal != nil {
		var prev json.RawMessage
		if cur != nil {
			prev = cur.Spec
		}
		if spec, err = kd.Seal(s.opts.Cipher, spec, prev); err != nil {
			var fe *FieldError
			if errors.As(err, &fe) {
				fe.Object = id
				return plan{}, fe
			}
			return plan{}, fmt.Errorf("%s: %w", id, err)
		}
	}
	res := Result{Kind: obj.Kind, Name: obj.Name}
	if cur != nil {
		res.Previous = s.Redact(cur)
		res.Revision = cur.Rev()
		if jsonEqual(cur.Spec, spec) {
			res.Action = "unchanged"
			res.Object = s.Redact(cur)
			return plan{res: res}, nil
		}
	}
	now := s.opts.Now().UTC()
	next := &Object{Kind: obj.Kind, Name: obj.Name, Spec: spec, Metadata: Metadata{
		UUID: strings.ToLower(obj.Kind) + "-" + uuid.NewString(), Tenant: DefaultTenant,
		Created: now, Updated: now, UpdatedBy: opts.User,
	}}
	res.Action = "created"
	if cur != nil {
		res.Action = "updated"
		next.Metadata.UUID, next.Metadata.Tenant, next.Metadata.Created = cur.Metadata.UUID, cur.Metadata.Tenant, cur.Metadata.Created
	}
	data, err := marshal(next)
	if err != nil {
		return plan{}, fmt.Errorf("%s: encode: %w", id, err)
	}
	if len(data) > MaxObjectSize {
		return plan{}, &FieldError{Object: id, Field: "spec", Message: fmt.Sprintf("object is %d bytes, at most %d allowed", len(data), MaxObjectSize)}
	}
	msg := &nats.Msg{Subject: s.subject(obj.Kind, obj.Name), Data: data, Header: nats.Header{}}
	msg.Header.Set(hdrExpectedLastSubjSeq, strconv.FormatUint(st.seq, 10))
	res.Object = s.Redact(next)
	return plan{res: res, msg: msg}, nil
}

func (s *Store) planDelete(ctx context.Context, ref Ref, opts DeleteOptions) (plan, error) {
	st, err := s.load(ctx, ref.Kind, ref.Name)
	if err != nil {
		return plan{}, err
	}
	res := Result{Kind: ref.Kind, Name: ref.Name}
	if st.obj == nil {
		if opts.IgnoreMissing {
			res.Action = "absent"
			return plan{res: res}, nil
		}
		return plan{}, &NotFoundError{Object: ref.String()}
	}
	if ref.Revision != nil && *ref.Revision != st.obj.Rev() {
		return plan{}, &ConflictError{Object: ref.String(), Expected: *ref.Revision, Actual: st.obj.Rev()}
	}
	res.Action = "deleted"
	res.Previous = s.Redact(st.obj)
	msg := &nats.Msg{Subject: s.subject(ref.Kind, ref.Name), Header: nats.Header{}}
	msg.Header.Set(hdrKVOperation, "DEL")
	msg.Header.Set(HeaderUser, opts.User)
	msg.Header.Set(hdrExpectedLastSubjSeq, strconv.FormatUint(st.seq, 10))
	return plan{res: res, msg: msg}, nil
}

// errStale reports that a key changed between planning and commit.
var errStale = errors.New("stale write")

// commit writes msgs as one atomic batch and returns the sequence of the
// last one.
func (s *Store) commit(ctx context.Context, msgs []*nats.Msg) (uint64, error) {
	seq, err := events.AtomicPublish(ctx, s.nc, msgs, s.opts.BeforeCommit)
	if errors.Is(err, events.ErrWrongLastSequence) {
		return 0, errStale
	}
	return seq, err
}

// jsonEqual compares two JSON documents by value.
func jsonEqual(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// Watch calls fn with every stored object of kind, then a Change with
// OpSynced, then each change, until ctx ends. It returns once the watch is
// set up; fn runs on one goroutine.
func (s *Store) Watch(ctx context.Context, kind string, fn func(Change)) error {
	kd, err := s.kind(kind)
	if err != nil {
		return err
	}
	w, err := s.kv.WatchFiltered(ctx, []string{kd.Name + ".>"})
	if err != nil {
		return fmt.Errorf("watch %s: %w", kd.Name, err)
	}
	go func() {
		defer w.Stop()
		for {
			select {
			case e, ok := <-w.Updates():
				if !ok {
					if ctx.Err() == nil {
						s.log.Error("watch ended before its context", "kind", kd.Name)
					}
					return
				}
				if e == nil {
					fn(Change{Op: OpSynced})
					continue
				}
				name := strings.TrimPrefix(e.Key(), kd.Name+".")
				switch e.Operation() {
				case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
					fn(Change{Op: OpDelete, Object: &Object{Kind: kd.Name, Name: name}, Revision: e.Revision()})
				default:
					obj, err := decodeStored(e.Value(), e.Revision())
					if err != nil {
						s.log.Error("watch: bad stored object", "key", e.Key(), "err", err)
						continue
					}
					fn(Change{Op: OpPut, Object: obj, Revision: e.Revision(), User: obj.Metadata.UpdatedBy})
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return nil
}
