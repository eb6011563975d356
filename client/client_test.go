package client

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/config"
)

// newTestClient starts handler and returns a client for it.
func newTestClient(t *testing.T, handler http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	c, err := New(Options{Addr: srv.URL, Token: "vgl_test"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeAPIError(w http.ResponseWriter, status int, code, msg, object, field string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{
		"code": code, "message": msg, "object": object, "field": field,
	}})
}

func TestNewAddr(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{in: "127.0.0.1:8480", want: "http://127.0.0.1:8480"},
		{in: "http://127.0.0.1:8480/", want: "http://127.0.0.1:8480"},
		{in: "https://vigil.example.com/base/", want: "https://vigil.example.com/base"},
		{in: "", err: "no address"},
		{in: "ftp://x", err: "scheme must be http or https"},
		{in: "http://", err: "has no host"},
		{in: "http://x/?a=b", err: "must not carry a query"},
	}
	for _, tt := range tests {
		c, err := New(Options{Addr: tt.in})
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("New(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("New(%q): %v", tt.in, err)
			continue
		}
		if c.Addr() != tt.want {
			t.Errorf("New(%q).Addr() = %q, want %q", tt.in, c.Addr(), tt.want)
		}
	}
}

func TestHeaders(t *testing.T) {
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); got != "Bearer vgl_test" {
			writeAPIError(w, 401, "unauthorized", "no token", "", "")
			return
		}
		if got := r.Header.Get("User-Agent"); got != "vigil-client" {
			t.Errorf("User-Agent = %q", got)
		}
		if r.URL.Path != "/api/v1/whoami" {
			t.Errorf("path = %q", r.URL.Path)
		}
		writeJSON(w, 200, map[string]any{"name": "admin", "role": "admin", "expires": nil})
	})
	id, err := c.Whoami(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if id.Name != "admin" || id.Role != "admin" || id.Expires != nil {
		t.Errorf("identity = %+v", id)
	}

	noToken, err := New(Options{Addr: c.Addr(), UserAgent: "vigil-client"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = noToken.Whoami(context.Background())
	if !IsCode(err, "unauthorized") {
		t.Fatalf("error = %v, want unauthorized", err)
	}
}

func TestAPIErrors(t *testing.T) {
	tests := []struct {
		name   string
		handle http.HandlerFunc
		status int
		code   string
		want   string
	}{
		{
			name: "field in message",
			handle: func(w http.ResponseWriter, r *http.Request) {
				writeAPIError(w, 400, "invalid_object", "spec.port: must be 1..65535", "Pool/web", "spec.port")
			},
			status: 400, code: "invalid_object",
			want: "Pool/web: spec.port: must be 1..65535 (invalid_object)",
		},
		{
			name: "field not in message",
			handle: func(w http.ResponseWriter, r *http.Request) {
				writeAPIError(w, 400, "invalid_object", "must be 1..65535", "Pool/web", "spec.port")
			},
			status: 400, code: "invalid_object",
			want: "Pool/web: spec.port: must be 1..65535 (invalid_object)",
		},
		{
			name: "conflict",
			handle: func(w http.ResponseWriter, r *http.Request) {
				writeAPIError(w, 409, "conflict", "revision 3 is not current (now 5)", "Pool/web", "")
			},
			status: 409, code: "conflict",
			want: "Pool/web: revision 3 is not current (now 5) (conflict)",
		},
		{
			name: "not found",
			handle: func(w http.ResponseWriter, r *http.Request) {
				writeAPIError(w, 404, "not_found", "Pool/web not found", "Pool/web", "")
			},
			status: 404, code: "not_found",
			want: "Pool/web not found (not_found)",
		},
		{
			name: "proxy page",
			handle: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(502)
				_, _ = io.WriteString(w, "<html>upstream gone</html>\n<body>...</body>")
			},
			status: 502,
			want:   "bad gateway: <html>upstream gone</html> from http://",
		},
		{
			name: "empty body",
			handle: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(503)
			},
			status: 503,
			want:   "service unavailable from http://",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, tt.handle)
			_, err := c.Get(context.Background(), "Pool", "web")
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("error %v (%T) is not an *APIError", err, err)
			}
			if ae.Status != tt.status || ae.Code != tt.code {
				t.Errorf("status %d code %q, want %d %q", ae.Status, ae.Code, tt.status, tt.code)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is more than one line", err)
			}
		})
	}
}

func TestNetworkError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := New(Options{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Kinds(context.Background())
	if err == nil {
		t.Fatal("no error from a closed port")
	}
	if !strings.Contains(err.Error(), "GET http://"+addr+"/api/v1/kinds: ") {
		t.Errorf("error %q does not name the address", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) {
		t.Errorf("error %q does not wrap the *net.OpError", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Kinds(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
}

func TestObjects(t *testing.T) {
	rev := uint64(4)
	stored := &config.Object{Kind: "Pool", Name: "web", Spec: json.RawMessage(`{"port":80}`), Metadata: config.Metadata{Revision: &rev}}
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method + " " + r.URL.Path {
		case "GET /api/v1/kinds":
			writeJSON(w, 200, map[string]any{"kinds": []KindInfo{{Name: "Pool", Description: "a pool"}}})
		case "GET /api/v1/objects/Pool":
			writeJSON(w, 200, map[string]any{"items": []*config.Object{stored}})
		case "GET /api/v1/objects/Pool/web":
			writeJSON(w, 200, stored)
		case "PUT /api/v1/objects/Pool/web":
			if r.URL.Query().Get("dry_run") != "true" {
				t.Errorf("dry_run = %q", r.URL.Query().Get("dry_run"))
			}
			if r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type = %q", r.Header.Get("Content-Type"))
			}
			var in config.Object
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
				t.Error(err)
			}
			writeJSON(w, 200, in)
		case "DELETE /api/v1/objects/Pool/web":
			if r.URL.Query().Get("revision") != "4" {
				t.Errorf("revision = %q", r.URL.Query().Get("revision"))
			}
			writeJSON(w, 200, map[string]any{"results": []Result{{Kind: "Pool", Name: "web", Action: "deleted", Previous: stored}}})
		case "POST /api/v1/apply":
			var in struct {
				Objects []*config.Object `json:"objects"`
				DryRun  bool             `json:"dry_run"`
			}
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil || len(in.Objects) != 2 || !in.DryRun {
				t.Errorf("apply body: %+v, %v", in, err)
			}
			writeJSON(w, 200, map[string]any{"results": []Result{
				{Kind: "Pool", Name: "web", Action: "unchanged", Revision: 4, Object: stored, Previous: stored},
				{Kind: "Pool", Name: "new", Action: "created", Revision: 5},
			}})
		case "POST /api/v1/delete":
			var in map[string]any
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
				t.Error(err)
			}
			if fmt.Sprint(in) != "map[dry_run:false ignore_missing:true objects:[map[kind:Pool name:web revision:4] map[kind:Pool name:gone]]]" {
				t.Errorf("delete body: %v", in)
			}
			writeJSON(w, 200, map[string]any{"results": []Result{
				{Kind: "Pool", Name: "web", Action: "deleted"},
				{Kind: "Pool", Name: "gone", Action: "absent"},
			}})
		default:
			writeAPIError(w, 404, "not_found", "no route "+r.URL.Path, "", "")
		}
	})
	ctx := context.Background()
	kinds, err := c.Kinds(ctx)
	if err != nil || len(kinds) != 1 || kinds[0].Name != "Pool" {
		t.Fatalf("Kinds = %+v, %v", kinds, err)
	}
	items, err := c.List(ctx, "Pool")
	if err != nil || len(items) != 1 || items[0].Rev() != 4 {
		t.Fatalf("List = %+v, %v", items, err)
	}
	obj, err := c.Get(ctx, "Pool", "web")
	if err != nil || string(obj.Spec) != `{"port":80}` {
		t.Fatalf("Get = %+v, %v", obj, err)
	}
	put, err := c.Put(ctx, obj, true)
	if err != nil || put.Name != "web" || put.Rev() != 4 {
		t.Fatalf("Put = %+v, %v", put, err)
	}
	res, err := c.Delete(ctx, "Pool", "web", &rev)
	if err != nil || res.Action != "deleted" || res.Previous == nil {
		t.Fatalf("Delete = %+v, %v", res, err)
	}
	results, err := c.Apply(ctx, []*config.Object{obj, {Kind: "Pool", Name: "new"}}, true)
	if err != nil || len(results) != 2 || results[1].Action != "created" || results[0].Object == nil {
		t.Fatalf("Apply = %+v, %v", results, err)
	}
	results, err = c.DeleteMany(ctx, []config.Ref{{Kind: "Pool", Name: "web", Revision: &rev}, {Kind: "Pool", Name: "gone"}}, false, true)
	if err != nil || len(results) != 2 || results[1].Action != "absent" {
		t.Fatalf("DeleteMany = %+v, %v", results, err)
	}
	if _, err := c.Get(ctx, "Pool", "nope"); !IsCode(err, "not_found") {
		t.Fatalf("Get missing: %v", err)
	}
}

func TestEvents(t *testing.T) {
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method + " " + r.URL.Path {
		case "POST /api/v1/events":
			body, _ := io.ReadAll(r.Body)
			if string(body) != `{"event_id":"SERVER_DOWN","obj_type":"pool","obj_name":"web"}` {
				t.Errorf("body = %s", body)
			}
			writeJSON(w, 201, PublishResult{ID: "0190", Seq: 7})
		case "GET /api/v1/events":
			if got := r.URL.RawQuery; got != "cursor=c1&event_id=SERVER_DOWN&limit=2&obj_name=web&obj_type=pool&since=15m" {
				t.Errorf("query = %s", got)
			}
			writeJSON(w, 200, map[string]any{"events": []json.RawMessage{json.RawMessage(`{"id":"a"}`), json.RawMessage(`{"id":"b"}`)}, "next_cursor": "c2"})
		}
	})
	ctx := context.Background()
	pr, err := c.PublishEvent(ctx, json.RawMessage(`{"event_id":"SERVER_DOWN","obj_type":"pool","obj_name":"web"}`))
	if err != nil || pr.ID != "0190" || pr.Seq != 7 || pr.Duplicate {
		t.Fatalf("PublishEvent = %+v, %v", pr, err)
	}
	page, err := c.ListEvents(ctx, EventFilter{EventID: "SERVER_DOWN", ObjType: "pool", ObjName: "web", Since: "15m", Limit: 2, Cursor: "c1"})
	if err != nil || len(page.Events) != 2 || page.NextCursor != "c2" || string(page.Events[1]) != `{"id":"b"}` {
		t.Fatalf("ListEvents = %+v, %v", page, err)
	}
}

type streamed struct {
	id, data string
}

func TestStreamEvents(t *testing.T) {
	stream := ": keepalive\r\n" +
		"id: c1\r\n" +
		"event: SERVER_DOWN\r\n" +
		"data: {\"id\":\"a\",\r\n" +
		"data:  \"n\":1}\r\n" +
		"\r\n" +
		"retry: 1000\n" +
		"event: no-data\n" +
		"\n" +
		": a comment between events\n" +
		"id: c2\rdata:{\"id\":\"b\"}\r\r" +
		"data: {\"id\":\"c\"}\n" + // no id: keeps c2
		"\n" +
		"id: c4\n" +
		"data: {\"id\":\"incomplete\"}\n" // no blank line: never dispatched
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/events/stream" {
			http.NotFound(w, r)
			return
		}
		if got := r.Header.Get("Last-Event-ID"); got != "c0" {
			t.Errorf("Last-Event-ID = %q", got)
		}
		if got := r.URL.Query().Get("event_id"); got != "SERVER_DOWN" {
			t.Errorf("event_id = %q", got)
		}
		if got := r.Header.Get("Accept"); got != "text/event-stream" {
			t.Errorf("Accept = %q", got)
		}
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		_, _ = io.WriteString(w, stream)
	})
	var got []streamed
	err := c.StreamEvents(context.Background(), EventFilter{EventID: "SERVER_DOWN"}, "c0", func(id string, ev json.RawMessage) error {
		got = append(got, streamed{id, string(ev)})
		return nil
	})
	if !errors.Is(err, ErrStreamEnded) {
		t.Errorf("error = %v, want ErrStreamEnded", err)
	}
	want := []streamed{
		{"c1", "{\"id\":\"a\",\n \"n\":1}"},
		{"c2", `{"id":"b"}`},
		{"c2", `{"id":"c"}`},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events\n got %q\nwant %q", got, want)
	}
}

func TestStreamEventsCallbackErrorAndCancel(t *testing.T) {
	// Each request says when it has sent its event: the first two fit.
	started := make(chan struct{}, 2)
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "id: 1\ndata: {}\n\n")
		w.(http.Flusher).Flush()
		select {
		case started <- struct{}{}:
		default:
		}
		<-r.Context().Done()
	})
	stop := errors.New("stop")
	err := c.StreamEvents(context.Background(), EventFilter{}, "", func(string, json.RawMessage) error { return stop })
	if err != stop { //nolint:errorlint // fn's error must come back as it is
		t.Errorf("error = %v, want fn's error as it is", err)
	}
	<-started // the first request's

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.StreamEvents(ctx, EventFilter{}, "", func(string, json.RawMessage) error { return nil })
	}()
	<-started
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("StreamEvents did not return after cancel")
	}
}

func TestStreamEventsErrors(t *testing.T) {
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("event_id") {
		case "BAD":
			writeAPIError(w, 400, "bad_request", "event_id: bad", "", "event_id")
		case "HTML":
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<html></html>")
		case "LONG":
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: "+strings.Repeat("x", MaxStreamLine+10)+"\n\n")
		case "LONGEVENT":
			w.Header().Set("Content-Type", "text/event-stream")
			line := "data: " + strings.Repeat("x", MaxStreamLine/2) + "\n"
			_, _ = io.WriteString(w, line+line+line+"\n")
		}
	})
	noop := func(string, json.RawMessage) error { return nil }
	ctx := context.Background()
	if err := c.StreamEvents(ctx, EventFilter{EventID: "BAD"}, "", noop); !IsCode(err, "bad_request") {
		t.Errorf("BAD: %v", err)
	}
	if err := c.StreamEvents(ctx, EventFilter{EventID: "HTML"}, "", noop); err == nil || !strings.Contains(err.Error(), "not an event stream") {
		t.Errorf("HTML: %v", err)
	}
	if err := c.StreamEvents(ctx, EventFilter{EventID: "LONG"}, "", noop); err == nil || !strings.Contains(err.Error(), "longer than 2 MiB") {
		t.Errorf("LONG: %v", err)
	}
	if err := c.StreamEvents(ctx, EventFilter{EventID: "LONGEVENT"}, "", noop); err == nil || !strings.Contains(err.Error(), "longer than 2 MiB") {
		t.Errorf("LONGEVENT: %v", err)
	}
}

func TestResponseTooLarge(t *testing.T) {
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"kinds": [`)
		chunk := strings.Repeat(`{"name":"x"},`, 1<<16)
		for written := 0; written <= MaxResponseSize; written += len(chunk) {
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
	})
	_, err := c.Kinds(context.Background())
	if err == nil || !strings.Contains(err.Error(), "answer larger than 64 MiB") {
		t.Fatalf("error = %v", err)
	}
}

func TestTokens(t *testing.T) {
	expires := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method + " " + r.URL.Path {
		case "POST /api/v1/tokens":
			var in TokenRequest
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in != (TokenRequest{Name: "ci", Role: "operator", TTL: "720h", Description: "CI"}) {
				t.Errorf("request %+v, %v", in, err)
			}
			writeJSON(w, 201, TokenCreated{Name: "ci", Role: "operator", Expires: &expires, Token: "vgl_secret"})
		case "GET /api/v1/tokens":
			writeJSON(w, 200, map[string]any{"items": []map[string]any{
				{"name": "admin", "role": "admin", "expires": nil, "created": "2026-01-01T00:00:00Z", "created_by": "vigil"},
				{"name": "ci", "role": "operator", "expires": expires, "description": "CI"},
			}})
		case "DELETE /api/v1/tokens/ci":
			writeJSON(w, 200, map[string]string{"name": "ci"})
		default:
			writeAPIError(w, 404, "not_found", "token not found", "", "")
		}
	})
	ctx := context.Background()
	tc, err := c.CreateToken(ctx, TokenRequest{Name: "ci", Role: "operator", TTL: "720h", Description: "CI"})
	if err != nil || tc.Token != "vgl_secret" || tc.Expires == nil || !tc.Expires.Equal(expires) {
		t.Fatalf("CreateToken = %+v, %v", tc, err)
	}
	list, err := c.ListTokens(ctx)
	if err != nil || len(list) != 2 || list[0].Expires != nil || list[0].CreatedBy != "vigil" || list[1].Description != "CI" {
		t.Fatalf("ListTokens = %+v, %v", list, err)
	}
	if err := c.RevokeToken(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	if err := c.RevokeToken(ctx, "nope"); !IsCode(err, "not_found") {
		t.Fatalf("RevokeToken(nope) = %v", err)
	}
}

func TestTLSWithCACert(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"name": "admin", "role": "admin"})
	}))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemData := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemData, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	c, err := New(Options{Addr: srv.URL, CACert: caFile})
	if err != nil {
		t.Fatal(err)
	}
	if id, err := c.Whoami(ctx); err != nil || id.Name != "admin" {
		t.Fatalf("with the CA: %+v, %v", id, err)
	}

	plain, err := New(Options{Addr: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Whoami(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without the CA: error = %v, want a certificate error", err)
	}

	// The caller's client is not changed.
	hc := &http.Client{Timeout: time.Minute}
	if _, err := New(Options{Addr: srv.URL, CACert: caFile, HTTPClient: hc}); err != nil {
		t.Fatal(err)
	}
	if hc.Transport != nil {
		t.Error("New changed the caller's HTTP client")
	}

	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Addr: srv.URL, CACert: bad}); err == nil || !strings.Contains(err.Error(), "no PEM certificates") {
		t.Errorf("bad CA file: %v", err)
	}
	if _, err := New(Options{Addr: srv.URL, CACert: filepath.Join(t.TempDir(), "missing.pem")}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing CA file: %v", err)
	}
}
