package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// testKinds registers kinds used only by these tests in a private registry.
func testRegistry() *Registry {
	r := NewRegistry()
	r.Register(Kind{Name: "Widget", Validate: func(spec json.RawMessage) error {
		var w struct {
			Size int    `json:"size"`
			Note string `json:"note"`
		}
		if err := DecodeSpec(spec, &w); err != nil {
			return err
		}
		if w.Size <= 0 {
			return Errorf("spec.size", "must be positive, got %d", w.Size)
		}
		return nil
	}})
	r.Register(Kind{Name: "Managed", Internal: true})
	sk, _ := Kinds.Lookup("Secret")
	r.Register(*sk)
	return r
}

func startNATS(t *testing.T) (*server.Server, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	s, err := server.NewServer(&server.Options{JetStream: true, StoreDir: t.TempDir(), Port: -1, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect("", nats.InProcessServer(s))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return s, nc, js
}

func openTestStore(t *testing.T, opts StoreOptions) (*Store, *nats.Conn) {
	t.Helper()
	_, nc, js := startNATS(t)
	if opts.Registry == nil {
		opts.Registry = testRegistry()
	}
	if opts.Cipher == nil {
		c, err := NewAESCipher(make([]byte, 32))
		if err != nil {
			t.Fatal(err)
		}
		opts.Cipher = c
	}
	st, err := OpenStore(context.Background(), nc, js, opts)
	if err != nil {
		t.Fatal(err)
	}
	return st, nc
}

func widget(name string, size int) *Object {
	return &Object{Kind: "widget", Name: name, Spec: json.RawMessage(fmt.Sprintf(`{"size": %d}`, size))}
}

func rev(n uint64) *uint64 { return &n }

func TestApplyCreateUpdateUnchanged(t *testing.T) {
	ctx := context.Background()
	st, _ := openTestStore(t, StoreOptions{})
	in := widget("a", 1)
	res, err := st.Apply(ctx, []*Object{in, widget("b", 2)}, ApplyOptions{User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Action != "created" || res[1].Action != "created" || res[1].Revision != res[0].Revision+1 {
		t.Fatalf("results: %+v", res)
	}
	if in.Kind != "widget" {
		t.Fatalf("caller's object was changed: kind %q", in.Kind)
	}
	got, err := st.Get(ctx, "Widget", "a")
	if err != nil {
		t.Fatal(err)
	}
	if got.Rev() != res[0].Revision || got.Metadata.UpdatedBy != "alice" || !strings.HasPrefix(got.Metadata.UUID, "widget-") || got.Metadata.Tenant != "admin" {
		t.Fatalf("stored: %+v", got.Metadata)
	}
	res2, err := st.Apply(ctx, []*Object{widget("a", 1), widget("b", 3)}, ApplyOptions{User: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if res2[0].Action != "unchanged" || res2[1].Action != "updated" {
		t.Fatalf("second apply: %+v", res2)
	}
	b, _ := st.Get(ctx, "widget", "b")
	if b.Metadata.UUID != res[1].Object.Metadata.UUID || !b.Metadata.Created.Equal(res[1].Object.Metadata.Created) || b.Metadata.UpdatedBy != "bob" {
		t.Fatalf("update lost identity: %+v vs %+v", b.Metadata, res[1].Object.Metadata)
	}
	list, err := st.List(ctx, "widgets")
	if err != nil || len(list) != 2 || list[0].Name != "a" || list[1].Name != "b" {
		t.Fatalf("list: %v %+v", err, list)
	}
}

func TestApplyInvalidWritesNothing(t *testing.T) {
	ctx := context.Background()
	st, _ := openTestStore(t, StoreOptions{})
	bad := widget("bad", 0)
	_, err := st.Apply(ctx, []*Object{widget("ok", 1), bad}, ApplyOptions{})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Object != "Widget/bad" || fe.Field != "spec.size" {
		t.Fatalf("err = %v", err)
	}
	if _, err := st.Get(ctx, "Widget", "ok"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ok was written: %v", err)
	}
	cases := map[string]*Object{
		"kind":      {Kind: "Nope", Name: "x"},
		"name":      {Kind: "Widget", Name: "bad name"},
		"spec.note": {Kind: "Widget", Name: "x", Spec: json.RawMessage(`{"size": 1, "note": 5}`)},
		"spec.zzz":  {Kind: "Widget", Name: "x", Spec: json.RawMessage(`{"size": 1, "zzz": 5}`)},
	}
	for field, obj := range cases {
		_, err := st.Apply(ctx, []*Object{obj}, ApplyOptions{})
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s: err = %v", field, err)
		}
	}
	if _, err := st.Apply(ctx, []*Object{{Kind: "Managed", Name: "m"}}, ApplyOptions{}); !errors.As(err, &fe) || fe.Field != "kind" {
		t.Errorf("internal kind applied: %v", err)
	}
	if _, err := st.Apply(ctx, []*Object{widget("d", 1), widget("d", 2)}, ApplyOptions{}); !errors.As(err, &fe) {
		t.Errorf("duplicate in batch: %v", err)
	}
}

func TestApplyStaleRevisionWritesNothing(t *testing.T) {
	ctx := context.Background()
	st, _ := openTestStore(t, StoreOptions{})
	res, err := st.Apply(ctx, []*Object{widget("a", 1), widget("b", 1)}, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(ctx, []*Object{widget("b", 2)}, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	a := widget("a", 5)
	a.Metadata.Revision = rev(res[0].Revision)
	b := widget("b", 5)
	b.Metadata.Revision = rev(res[1].Revision) // stale now
	_, err = st.Apply(ctx, []*Object{widget("c", 1), a, b}, ApplyOptions{})
	var ce *ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, ErrConflict) || ce.Object != "Widget/b" {
		t.Fatalf("err = %v", err)
	}
	if got, _ := st.Get(ctx, "Widget", "a"); string(got.Spec) != `{"size": 1}` && !jsonEqual(got.Spec, json.RawMessage(`{"size":1}`)) {
		t.Fatalf("a was written: %s", got.Spec)
	}
	if _, err := st.Get(ctx, "Widget", "c"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("c was written: %v", err)
	}
	c := widget("a", 9)
	c.Metadata.Revision = rev(0)
	if _, err := st.Apply(ctx, []*Object{c}, ApplyOptions{}); !errors.Is(err, ErrConflict) {
		t.Fatalf("create-only over existing: %v", err)
	}
}

// TestConcurrentBatchIsAtomic races a batch that expects revisions against
// writers of the same keys: whatever wins, each batch lands whole or not at all.
func TestConcurrentBatchIsAtomic(t *testing.T) {
	ctx := context.Background()
	st, _ := openTestStore(t, StoreOptions{})
	const n = 20
	var objs []*Object
	for i := range n {
		objs = append(objs, widget(fmt.Sprintf("w%02d", i), 1))
	}
	if _, err := st.Apply(ctx, objs, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 10 {
				batch := make([]*Object, n)
				for i := range n {
					batch[i] = widget(fmt.Sprintf("w%02d", i), 100*(g+1)+round)
				}
				if _, err := st.Apply(ctx, batch, ApplyOptions{}); err != nil && !errors.Is(err, ErrConflict) {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	list, err := st.List(ctx, "Widget")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range list[1:] {
		if !jsonEqual(o.Spec, list[0].Spec) {
			t.Fatalf("batch interleaved: %s=%s but %s=%s", list[0].Name, list[0].Spec, o.Name, o.Spec)
		}
	}
}

func TestBeforeCommitAbortLeavesNothing(t *testing.T) {
	ctx := context.Background()
	srv, nc, js := startNATS(t)
	c, _ := NewAESCipher(make([]byte, 32))
	st, err := OpenStore(ctx, nc, js, StoreOptions{Registry: testRegistry(), Cipher: c, BeforeCommit: func() { nc.Close() }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(ctx, []*Object{widget("a", 1), widget("b", 1), widget("c", 1)}, ApplyOptions{}); err == nil {
		t.Fatal("apply succeeded without its commit")
	}
	nc2, err := nats.Connect("", nats.InProcessServer(srv))
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	js2, _ := jetstream.New(nc2)
	st2, err := OpenStore(ctx, nc2, js2, StoreOptions{Registry: testRegistry(), Cipher: c})
	if err != nil {
		t.Fatal(err)
	}
	if l, err := st2.List(ctx, "Widget"); err != nil || len(l) != 0 {
		t.Fatalf("staged batch leaked: %v %d", err, len(l))
	}
	if _, err := st2.Apply(ctx, []*Object{widget("a", 1), widget("b", 1)}, ApplyOptions{}); err != nil {
		t.Fatalf("apply after abort: %v", err)
	}
}

func TestDelete(t *testing.T) {
	ctx := context.Background()
	st, _ := openTestStore(t, StoreOptions{})
	if _, err := st.Apply(ctx, []*Object{widget("a", 1), widget("b", 1)}, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Delete(ctx, []Ref{{Kind: "Widget", Name: "a"}, {Kind: "Widget", Name: "zz"}}, DeleteOptions{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	if _, err := st.Get(ctx, "Widget", "a"); err != nil {
		t.Fatalf("a deleted by failed batch: %v", err)
	}
	res, err := st.Delete(ctx, []Ref{{Kind: "Widget", Name: "a"}, {Kind: "Widget", Name: "zz"}}, DeleteOptions{IgnoreMissing: true, User: "carol"})
	if err != nil || res[0].Action != "deleted" || res[1].Action != "absent" {
		t.Fatalf("delete: %v %+v", err, res)
	}
	if _, err := st.Get(ctx, "Widget", "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a still there: %v", err)
	}
	// A deleted key can be created again, also create-only.
	w := widget("a", 2)
	w.Metadata.Revision = rev(0)
	if _, err := st.Apply(ctx, []*Object{w}, ApplyOptions{}); err != nil {
		t.Fatalf("recreate: %v", err)
	}
}

func TestWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, _ := openTestStore(t, StoreOptions{})
	if _, err := st.Apply(ctx, []*Object{widget("a", 1)}, ApplyOptions{User: "u"}); err != nil {
		t.Fatal(err)
	}
	ch := make(chan Change, 16)
	if err := st.Watch(ctx, "Widget", func(c Change) { ch <- c }); err != nil {
		t.Fatal(err)
	}
	next := func() Change {
		select {
		case c := <-ch:
			return c
		case <-time.After(5 * time.Second):
			t.Fatal("no change")
		}
		return Change{}
	}
	if c := next(); c.Op != OpPut || c.Object.Name != "a" || c.User != "u" {
		t.Fatalf("initial: %+v", c)
	}
	if c := next(); c.Op != OpSynced {
		t.Fatalf("synced: %+v", c)
	}
	if _, err := st.Delete(ctx, []Ref{{Kind: "Widget", Name: "a"}}, DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if c := next(); c.Op != OpDelete || c.Object.Name != "a" {
		t.Fatalf("delete: %+v", c)
	}
}
