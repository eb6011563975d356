package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/events"
)

// rig is a real embedded bus, a real config store, the service and an
// HTTP server in front of it.
type rig struct {
	t     testing.TB
	bus   *events.Bus
	store *config.Store
	svc   *Service
	srv   *httptest.Server
	now   atomic.Pointer[time.Time]
}

type rigOpts struct {
	pub   Publisher // default the bus
	noJS  bool
	quiet bool // discard the service's log
	clock func() time.Time
}

func newRig(t testing.TB, yaml string, o rigOpts) *rig {
	t.Helper()
	ctx := context.Background()
	bus, err := events.StartBus(ctx, events.BusOptions{StoreDir: filepath.Join(t.TempDir(), "js")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Stop)
	c, err := config.NewAESCipher(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	store, err := config.OpenStore(ctx, bus.Conn(), bus.JetStream(), config.StoreOptions{Registry: config.Kinds, Cipher: c})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, bus: bus, store: store}
	if yaml != "" {
		r.apply(yaml)
	}
	opts := Options{Store: store, Secrets: store, Publisher: bus, JS: bus.JetStream(), Clock: r.clock}
	if o.pub != nil {
		opts.Publisher = o.pub
	}
	if o.noJS {
		opts.JS = nil
	}
	if o.quiet {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if o.clock != nil {
		opts.Clock = o.clock
	}
	svc, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := svc.Start(sctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Stop)
	r.svc = svc
	mux := http.NewServeMux()
	mux.Handle("/hooks/{name}", svc)
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	return r
}

// clock is the service's clock: the time set by setNow, else the real one.
func (r *rig) clock() time.Time {
	if p := r.now.Load(); p != nil {
		return *p
	}
	return time.Now()
}

func (r *rig) setNow(t time.Time) { r.now.Store(&t) }

func (r *rig) apply(yaml string) {
	r.t.Helper()
	objs, err := config.ParseObjects(strings.NewReader(yaml), "test.yaml")
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.store.Apply(context.Background(), objs, config.ApplyOptions{User: "test"}); err != nil {
		r.t.Fatal(err)
	}
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

// errField decodes an error answer.
func (a answer) err() (code, field, msg string) {
	var b errorBody
	_ = json.Unmarshal(a.body, &b)
	return b.Error.Code, b.Error.Field, b.Error.Message
}

func (r *rig) post(name string, h map[string]string, body []byte) answer {
	r.t.Helper()
	return r.do(http.MethodPost, name, h, body)
}

// do sends a request with method to a receiver.
func (r *rig) do(method, name string, h map[string]string, body []byte) answer {
	r.t.Helper()
	req, err := http.NewRequest(method, r.srv.URL+"/hooks/"+name, bytes.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// stored returns the events in the events stream.
func (r *rig) stored() []*events.Event {
	r.t.Helper()
	list, _, err := r.bus.List(context.Background(), events.Filter{Limit: 10000})
	if err != nil {
		r.t.Fatal(err)
	}
	out := make([]*events.Event, len(list))
	for i, s := range list {
		var ev events.Event
		if err := json.Unmarshal(s.Data, &ev); err != nil {
			r.t.Fatal(err)
		}
		out[i] = &ev
	}
	return out
}

// fakePublisher is a Publisher with a function field.
type fakePublisher struct {
	mu     sync.Mutex
	fn     func(ctx context.Context, ev *events.Event) (events.PublishResult, error)
	events []*events.Event
}

func (f *fakePublisher) Publish(ctx context.Context, ev *events.Event) (events.PublishResult, error) {
	if f.fn != nil {
		if res, err := f.fn(ctx, ev); err != nil {
			return res, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, ev)
	return events.PublishResult{Seq: uint64(len(f.events))}, nil
}

func (f *fakePublisher) got() []*events.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*events.Event(nil), f.events...)
}

var errBusDown = errors.New("nats: no responders available for request")
