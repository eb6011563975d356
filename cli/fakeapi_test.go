package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/client"
	"github.com/vigilhq/vigil/config"
)

// fakeAPI is a small in-memory server that follows docs/api.md closely
// enough for the command line: objects with revisions, apply and delete
// batches, events with cursors and the SSE stream, and tokens. The real
// server is tested in its own package.
type fakeAPI struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	tokens  map[string]fakeToken                 // by secret
	objects map[string]map[string]*config.Object // by lower-case kind, then name
	kinds   []string
	rev     uint64
	events  []json.RawMessage // seq = index+1
	newEv   chan struct{}     // closed and replaced when an event is stored
	// dropStreamAfter closes the first stream after this many events.
	dropStreamAfter int
	streams         int
	lastEventIDs    []string
	requests        []string

	// outcomes says how the runs of each ControlScript end; a script that
	// is not here does not exist.
	outcomes   map[string]client.Execution
	executions []*client.Execution // exec-1, exec-2, ... in order
	runBodies  []string
	queueFull  bool
	// dropFollows closes this many log streams before their end event;
	// holdFollows keeps log streams open, without an end, until the client
	// goes away.
	dropFollows int
	holdFollows bool
}

type fakeToken struct {
	Name, Role, Description string
	Expires                 time.Time
	Created                 time.Time
}

func newFakeAPI(t *testing.T) *fakeAPI {
	t.Helper()
	f := &fakeAPI{
		t:        t,
		tokens:   map[string]fakeToken{"vgl_admin": {Name: "admin", Role: "admin"}},
		objects:  map[string]map[string]*config.Object{},
		kinds:    []string{"Pool", "TestWidget"},
		newEv:    make(chan struct{}),
		outcomes: map[string]client.Execution{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/kinds", f.auth(f.listKinds))
	mux.HandleFunc("GET /api/v1/objects/{kind}", f.auth(f.list))
	mux.HandleFunc("GET /api/v1/objects/{kind}/{name}", f.auth(f.get))
	mux.HandleFunc("DELETE /api/v1/objects/{kind}/{name}", f.auth(f.deleteOne))
	mux.HandleFunc("POST /api/v1/apply", f.auth(f.apply))
	mux.HandleFunc("POST /api/v1/delete", f.auth(f.deleteMany))
	mux.HandleFunc("POST /api/v1/events", f.auth(f.publish))
	mux.HandleFunc("GET /api/v1/events", f.auth(f.listEvents))
	mux.HandleFunc("GET /api/v1/events/stream", f.auth(f.stream))
	mux.HandleFunc("GET /api/v1/whoami", f.auth(f.whoami))
	mux.HandleFunc("POST /api/v1/tokens", f.auth(f.createToken))
	mux.HandleFunc("GET /api/v1/tokens", f.auth(f.listTokens))
	mux.HandleFunc("DELETE /api/v1/tokens/{name}", f.auth(f.revokeToken))
	mux.HandleFunc("POST /api/v1/controlscripts/{name}/run", f.auth(f.runScript))
	mux.HandleFunc("GET /api/v1/executions", f.auth(f.listExecutions))
	mux.HandleFunc("GET /api/v1/executions/{id}", f.auth(f.getExecution))
	mux.HandleFunc("GET /api/v1/executions/{id}/logs", f.auth(f.executionLogs))
	mux.HandleFunc("POST /api/v1/executions/{id}/cancel", f.auth(f.cancelExecution))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		apiError(w, 404, "not_found", "no route "+r.URL.Path, "", "")
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) URL() string { return f.srv.URL }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status int, code, msg, object, field string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{
		"code": code, "message": msg, "object": object, "field": field,
	}})
}

func (f *fakeAPI) auth(h func(http.ResponseWriter, *http.Request, fakeToken)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, r.Method+" "+r.URL.Path)
		tok, ok := f.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		f.mu.Unlock()
		if !ok || !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			apiError(w, 401, "unauthorized", "no valid token", "", "")
			return
		}
		h(w, r, tok)
	}
}

func (f *fakeAPI) kind(name string) (string, bool) {
	for _, k := range f.kinds {
		if strings.EqualFold(k, name) {
			return k, true
		}
	}
	return "", false
}

func (f *fakeAPI) listKinds(w http.ResponseWriter, r *http.Request, _ fakeToken) {
	var out []map[string]string
	for _, k := range f.kinds {
		out = append(out, map[string]string{"name": k, "description": "a " + k})
	}
	writeJSON(w, 200, map[string]any{"kinds": out})
}

func (f *fakeAPI) list(w http.ResponseWriter, r *http.Request, _ fakeToken) {
	kind, ok := f.kind(r.PathValue("kind"))
	if !ok {
		apiError(w, 400, "unknown_kind", fmt.Sprintf("unknown kind %q", r.PathValue("kind")), "", "")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	items := []*config.Object{}
	for _, o := range f.objects[strings.ToLower(kind)] {
		items = append(items, o)
	}
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	writeJSON(w, 200, map[string]any{"items": items})
}

func (f *fakeAPI) get(w http.ResponseWriter, r *http.Request, _ fakeToken) {
	kind, ok := f.kind(r.PathValue("kind"))
	if !ok {
		apiError(w, 400, "unknown_kind", fmt.Sprintf("unknown kind %q", r.PathValue("kind")), "", "")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.objects[strings.ToLower(kind)][r.PathValue("name")]
	if o == nil {
		id := kind + "/" + r.PathValue("name")
		apiError(w, 404, "not_found", id+" not found", id, "")
		return
	}
	writeJSON(w, 200, o)
}

type fakeResult struct {
	Kind     string         `json:"kind"`
	Name     string         `json:"name"`
	Action   string         `json:"action"`
	Revision uint64         `json:"revision,omitempty"`
	Object   *config.Object `json:"object"`
	Previous *config.Object `json:"previous"`
}

func (f *fakeAPI) apply(w http.ResponseWriter, r *http.Request, tok fakeToken) {
	var in struct {
		Objects []*config.Object `json:"objects"`
		DryRun  bool             `json:"dry_run"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		apiError(w, 400, "bad_request", err.Error(), "", "")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var results []fakeResult
	stage := map[string]*config.Object{}
	for _, o := range in.Objects {
		kind, ok := f.kind(o.Kind)
		if !ok {
			apiError(w, 400, "unknown_kind", fmt.Sprintf("unknown kind %q", o.Kind), o.Kind+"/"+o.Name, "kind")
			return
		}
		o.Kind = kind
		id := kind + "/" + o.Name
		if err := config.Kinds.Validate(o); err != nil && kind == "TestWidget" {
			var fe *config.FieldError
			_ = errors.As(err, &fe)
			apiError(w, 400, "invalid_object", fe.Field+": "+fe.Message, id, fe.Field)
			return
		}
		prev := f.objects[strings.ToLower(kind)][o.Name]
		if o.Metadata.Revision != nil {
			cur := uint64(0)
			if prev != nil {
				cur = prev.Rev()
			}
			if cur != *o.Metadata.Revision {
				apiError(w, 409, "conflict", fmt.Sprintf("revision %d is not current (%d)", *o.Metadata.Revision, cur), id, "")
				return
			}
		}
		res := fakeResult{Kind: kind, Name: o.Name, Previous: prev}
		if prev != nil && jsonEqual(prev.Spec, o.Spec) {
			res.Action, res.Revision, res.Object = "unchanged", prev.Rev(), prev
			results = append(results, res)
			continue
		}
		res.Action = "created"
		stored := &config.Object{Kind: kind, Name: o.Name, Spec: o.Spec}
		stored.Metadata.UUID = strings.ToLower(kind) + "-" + o.Name
		stored.Metadata.Tenant = config.DefaultTenant
		stored.Metadata.Created = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		if prev != nil {
			res.Action = "updated"
			stored.Metadata.Created = prev.Metadata.Created
		}
		rev := f.rev + uint64(len(stage)) + 1
		stored.Metadata.Revision = &rev
		stored.Metadata.Updated = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		stored.Metadata.UpdatedBy = tok.Name
		res.Revision, res.Object = rev, stored
		stage[id] = stored
		results = append(results, res)
	}
	if !in.DryRun {
		for _, o := range stage {
			m := f.objects[strings.ToLower(o.Kind)]
			if m == nil {
				m = map[string]*config.Object{}
				f.objects[strings.ToLower(o.Kind)] = m
			}
			m[o.Name] = o
		}
		f.rev += uint64(len(stage))
	}
	writeJSON(w, 200, map[string]any{"results": results})
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

func (f *fakeAPI) deleteRefs(w http.ResponseWriter, refs []config.Ref, dryRun, ignoreMissing bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var results []fakeResult
	for _, ref := range refs {
		kind, ok := f.kind(ref.Kind)
		if !ok {
			apiError(w, 400, "unknown_kind", fmt.Sprintf("unknown kind %q", ref.Kind), "", "")
			return
		}
		id := kind + "/" + ref.Name
		prev := f.objects[strings.ToLower(kind)][ref.Name]
		if prev == nil {
			if !ignoreMissing {
				apiError(w, 404, "not_found", id+" not found", id, "")
				return
			}
			results = append(results, fakeResult{Kind: kind, Name: ref.Name, Action: "absent"})
			continue
		}
		if ref.Revision != nil && *ref.Revision != prev.Rev() {
			apiError(w, 409, "conflict", "revision is not current", id, "")
			return
		}
		results = append(results, fakeResult{Kind: kind, Name: ref.Name, Action: "deleted", Previous: prev})
	}
	if !dryRun {
		for _, r := range results {
			delete(f.objects[strings.ToLower(r.Kind)], r.Name)
		}
	}
	writeJSON(w, 200, map[string]any{"results": results})
}

func (f *fakeAPI) deleteOne(w http.ResponseWriter, r *http.Request, _ fakeToken) {
	ref := config.Ref{Kind: r.PathValue("kind"), Name: r.PathValue("name")}
	if s := r.URL.Query().Get("revision"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			apiError(w, 400, "bad_request", "revision: "+err.Error(), "", "")
			return
		}
		ref.Revision = &n
	}
	f.deleteRefs(w, []config.Ref{ref}, false, false)
}

func (f *fakeAPI) deleteMany(w http.ResponseWriter, r *http.Request, _ fakeToken) {
	var in struct {
		Objects       []config.Ref `json:"objects"`
		DryRun        bool         `json:"dry_run"`
		IgnoreMissing bool         `json:"ignore_missing"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		apiError(w, 400, "bad_request", err.Error(), "", "")
		return
	}
	f.deleteRefs(w, in.Objects, in.DryRun, in.IgnoreMissing)
}

// addEvent stores a CloudEvent built from a bare record or kept as given.
func (f *fakeAPI) addEvent(body map[string]any) (string, int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ev := body
	if _, ce := body["specversion"]; !ce {
		id := fmt.Sprintf("01900000-0000-7000-8000-%012d", len(f.events)+1)
		ev = map[string]any{
			"specversion": "1.0", "id": id, "source": "vigil/api", "type": body["event_id"],
			"subject": fmt.Sprint(body["obj_type"], "/", body["obj_name"]),
			"time":    time.Date(2026, 1, 2, 3, 4, len(f.events), 0, time.UTC).Format(time.RFC3339Nano),
			"data":    body,
		}
	}
	id := fmt.Sprint(ev["id"])
	for i, old := range f.events {
		var o struct{ ID string }
		_ = json.Unmarshal(old, &o)
		if o.ID == id {
			return id, i + 1, true
		}
	}
	data, _ := json.Marshal(ev)
	f.events = append(f.events, data)
	close(f.newEv)
	f.newEv = make(chan struct{})
	return id, len(f.events), false
}

func (f *fakeAPI) publish(w http.ResponseWriter, r *http.Request, _ fakeToken) {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		apiError(w, 400, "bad_request", err.Error(), "", "")
		return
	}
	if _, ce := body["specversion"]; !ce {
		if _, ok := body["event_id"].(string); !ok {
			apiError(w, 400, "invalid_event", "event_id: is required", "", "event_id")
			return
		}
		if d, ok := body["event_details"]; ok {
			if _, isMap := d.(map[string]any); !isMap {
				apiError(w, 400, "invalid_event", "event_details: must be an object", "", "event_details")
				return
			}
		}
	}
	id, seq, dup := f.addEvent(body)
	writeJSON(w, 201, map[string]any{"id": id, "seq": seq, "duplicate": dup})
}

// match returns the events after cursor that match the filters.
func (f *fakeAPI) match(r *http.Request, after int) []int {
	q := r.URL.Query()
	var out []int
	for i := after; i < len(f.events); i++ {
		var ev struct {
			Data struct {
				EventID string `json:"event_id"`
				ObjType string `json:"obj_type"`
				ObjName string `json:"obj_name"`
			} `json:"data"`
		}
		_ = json.Unmarshal(f.events[i], &ev)
		if (q.Get("event_id") == "" || q.Get("event_id") == ev.Data.EventID) &&
			(q.Get("obj_type") == "" || q.Get("obj_type") == ev.Data.ObjType) &&
			(q.Get("obj_name") == "" || q.Get("obj_name") == ev.Data.ObjName) {
			out = append(out, i)
		}
	}
	return out
}

func (f *fakeAPI) listEvents(w http.ResponseWriter, r *http.Request, _ fakeToken) {
	q := r.URL.Query()
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			apiError(w, 400, "bad_request", "limit: must be 1..1000", "", "limit")
			return
		}
		limit = n
	}
	after := 0
	if s := q.Get("cursor"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			apiError(w, 400, "bad_request", "cursor: bad cursor", "", "cursor")
			return
		}
		after = n
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	idx := f.match(r, after)
	next := ""
	if len(idx) > limit {
		idx = idx[:limit]
		next = strconv.Itoa(idx[len(idx)-1] + 1)
	}
	events := []json.RawMessage{}
	for _, i := range idx {
		events = append(events, f.events[i])
	}
	writeJSON(w, 200, map[string]any{"events": events, "next_cursor": next})
}

func (f *fakeAPI) stream(w http.ResponseWriter, r *http.Request, _ fakeToken) {
	after := 0
	if s := r.Header.Get("Last-Event-ID"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			apiError(w, 400, "bad_request", "Last-Event-ID: bad cursor", "", "")
			return
		}
		after = n
	}
	f.mu.Lock()
	f.streams++
	first := f.streams == 1
	f.lastEventIDs = append(f.lastEventIDs, r.Header.Get("Last-Event-ID"))
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	fl := w.(http.Flusher)
	_, _ = fmt.Fprint(w, ": keepalive\n\n")
	fl.Flush()
	sent := 0
	for {
		f.mu.Lock()
		idx := f.match(r, after)
		wait := f.newEv
		var out strings.Builder
		for _, i := range idx {
			var ev struct{ Type string }
			_ = json.Unmarshal(f.events[i], &ev)
			fmt.Fprintf(&out, "id: %d\nevent: %s\ndata: %s\n\n", i+1, ev.Type, f.events[i])
			after = i + 1
			sent++
			if first && f.dropStreamAfter > 0 && sent >= f.dropStreamAfter {
				break
			}
		}
		if len(idx) == 0 {
			after = len(f.events)
		}
		f.mu.Unlock()
		_, _ = fmt.Fprint(w, out.String())
		fl.Flush()
		if first && f.dropStreamAfter > 0 && sent >= f.dropStreamAfter {
			return // drop the connection
		}
		select {
		case <-r.Context().Done():
			return
		case <-wait:
		}
	}
}

func (f *fakeAPI) whoami(w http.ResponseWriter, r *http.Request, tok fakeToken) {
	writeJSON(w, 200, map[string]any{"name": tok.Name, "role": tok.Role, "expires": nil})
}

func (f *fakeAPI) createToken(w http.ResponseWriter, r *http.Request, tok fakeToken) {
	if tok.Role != "admin" {
		apiError(w, 403, "forbidden", "role "+tok.Role+" may not create tokens", "", "")
		return
	}
	var in struct{ Name, Role, TTL, Description string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		apiError(w, 400, "bad_request", err.Error(), "", "")
		return
	}
	ttl, err := time.ParseDuration(in.TTL)
	if err != nil {
		apiError(w, 400, "bad_request", "ttl: "+err.Error(), "", "ttl")
		return
	}
	if in.Name == "" {
		in.Name = "token-1"
	}
	nt := fakeToken{Name: in.Name, Role: in.Role, Description: in.Description, Expires: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(ttl), Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	secret := "vgl_" + in.Name
	f.mu.Lock()
	f.tokens[secret] = nt
	f.mu.Unlock()
	writeJSON(w, 201, map[string]any{"name": nt.Name, "role": nt.Role, "expires": nt.Expires, "token": secret})
}

func (f *fakeAPI) listTokens(w http.ResponseWriter, r *http.Request, _ fakeToken) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var items []map[string]any
	for _, t := range f.tokens {
		item := map[string]any{"name": t.Name, "role": t.Role, "description": t.Description, "created_by": "admin"}
		if !t.Expires.IsZero() {
			item["expires"] = t.Expires
			item["created"] = t.Created
		}
		items = append(items, item)
	}
	sort.Slice(items, func(i, j int) bool { return items[i]["name"].(string) < items[j]["name"].(string) })
	writeJSON(w, 200, map[string]any{"items": items})
}

func (f *fakeAPI) revokeToken(w http.ResponseWriter, r *http.Request, _ fakeToken) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for secret, t := range f.tokens {
		if t.Name == r.PathValue("name") {
			delete(f.tokens, secret)
			writeJSON(w, 200, map[string]string{"name": t.Name})
			return
		}
	}
	apiError(w, 404, "not_found", "token not found", "", "")
}

// fakeTime is when the fake's executions are queued; they start a second
// later and run for 2.5 s.
var fakeTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func (f *fakeAPI) runScript(w http.ResponseWriter, r *http.Request, tok fakeToken) {
	name := r.PathValue("name")
	var in struct {
		Alert json.RawMessage `json:"alert"`
		Wait  bool            `json:"wait"`
	}
	body, _ := io.ReadAll(r.Body)
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if len(body) > 0 {
		if err := dec.Decode(&in); err != nil {
			apiError(w, 400, "bad_request", err.Error(), "", "")
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runBodies = append(f.runBodies, string(body))
	if _, ok := f.outcomes[name]; !ok {
		apiError(w, 404, "not_found", "ControlScript/"+name+": not found", "ControlScript/"+name, "")
		return
	}
	if f.queueFull {
		apiError(w, 429, "queue_full", "the run queue is full; try again later", "", "")
		return
	}
	ex := &client.Execution{
		ID: fmt.Sprintf("exec-%d", len(f.executions)+1), Script: name, ScriptRevision: 1,
		Trigger: "manual", TriggeredBy: tok.Name, Alert: in.Alert, Attempt: 1,
		Status: client.StatusQueued, Queued: fakeTime,
	}
	f.executions = append(f.executions, ex)
	if in.Wait {
		f.complete(ex)
		writeJSON(w, 200, ex)
		return
	}
	writeJSON(w, 202, ex)
}

// complete ends ex as its script's outcome says; f.mu is held.
func (f *fakeAPI) complete(ex *client.Execution) {
	if ex.Final() {
		return
	}
	o := f.outcomes[ex.Script]
	started, finished := fakeTime.Add(time.Second), fakeTime.Add(3500*time.Millisecond)
	ex.Started, ex.Finished = &started, &finished
	ex.Status, ex.Reason, ex.ExitCode, ex.Signal = o.Status, o.Reason, o.ExitCode, o.Signal
	ex.Stdout, ex.Stderr, ex.StdoutTruncated, ex.StderrTruncated = o.Stdout, o.Stderr, o.StdoutTruncated, o.StderrTruncated
	ex.CPUTimeMS, ex.PeakMemory, ex.Enforcement = o.CPUTimeMS, o.PeakMemory, o.Enforcement
}

func (f *fakeAPI) execution(w http.ResponseWriter, id string) *client.Execution {
	for _, ex := range f.executions {
		if ex.ID == id {
			return ex
		}
	}
	apiError(w, 404, "not_found", "Execution/"+id+": not found", "Execution/"+id, "")
	return nil
}

func (f *fakeAPI) listExecutions(w http.ResponseWriter, r *http.Request, _ fakeToken) {
	q := r.URL.Query()
	f.mu.Lock()
	defer f.mu.Unlock()
	items := []*client.Execution{}
	for i := len(f.executions) - 1; i >= 0; i-- {
		ex := f.executions[i]
		if (q.Get("script") == "" || q.Get("script") == ex.Script) && (q.Get("status") == "" || q.Get("status") == ex.Status) {
			items = append(items, ex)
		}
	}
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n < len(items) {
		items = items[:n]
	}
	writeJSON(w, 200, map[string]any{"items": items})
}

func (f *fakeAPI) getExecution(w http.ResponseWriter, r *http.Request, _ fakeToken) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ex := f.execution(w, r.PathValue("id")); ex != nil {
		writeJSON(w, 200, ex)
	}
}

// executionLogs answers the logs; following a queued execution runs it to
// its end meanwhile.
func (f *fakeAPI) executionLogs(w http.ResponseWriter, r *http.Request, _ fakeToken) {
	f.mu.Lock()
	ex := f.execution(w, r.PathValue("id"))
	if ex == nil {
		f.mu.Unlock()
		return
	}
	if r.URL.Query().Get("follow") != "true" {
		writeJSON(w, 200, map[string]any{
			"stdout": ex.Stdout, "stderr": ex.Stderr, "status": ex.Status,
			"stdout_truncated": ex.StdoutTruncated, "stderr_truncated": ex.StderrTruncated,
		})
		f.mu.Unlock()
		return
	}
	drop, hold := f.dropFollows > 0, f.holdFollows
	if drop {
		f.dropFollows--
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	_, _ = io.WriteString(w, ": keepalive\n\n")
	w.(http.Flusher).Flush()
	if drop {
		return
	}
	if hold {
		<-r.Context().Done()
		return
	}
	f.mu.Lock()
	f.complete(ex)
	var b strings.Builder
	for _, s := range []struct{ event, out string }{{"stdout", ex.Stdout}, {"stderr", ex.Stderr}} {
		if s.out == "" {
			continue
		}
		out := strings.ReplaceAll(strings.ReplaceAll(s.out, "\r\n", "\n"), "\r", "\n")
		fmt.Fprintf(&b, "event: %s\n", s.event)
		for line := range strings.SplitSeq(out, "\n") {
			fmt.Fprintf(&b, "data: %s\n", line)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "event: end\ndata: %s\n\n", ex.Status)
	f.mu.Unlock()
	_, _ = io.WriteString(w, b.String())
}

func (f *fakeAPI) cancelExecution(w http.ResponseWriter, r *http.Request, tok fakeToken) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ex := f.execution(w, r.PathValue("id"))
	if ex == nil {
		return
	}
	if ex.Final() {
		apiError(w, 409, "conflict", "Execution/"+ex.ID+" already ended ("+ex.Status+")", "Execution/"+ex.ID, "")
		return
	}
	finished := fakeTime.Add(time.Second)
	ex.Status, ex.Reason, ex.Finished = client.StatusCancelled, "cancelled by "+tok.Name+" while queued", &finished
	writeJSON(w, 200, ex)
}
