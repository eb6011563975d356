package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/events"
)

// Bounds of GET /api/v1/events.
const (
	DefaultEventLimit = 100
	MaxEventLimit     = 1000
)

var eventIDRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// publishAnswer is the answer of POST /api/v1/events.
type publishAnswer struct {
	ID        string `json:"id"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"`
}

// eventList is the answer of GET /api/v1/events.
type eventList struct {
	Events     []json.RawMessage `json:"events"`
	NextCursor string            `json:"next_cursor"`
}

// batchMediaType is the CloudEvents batched content mode.
const batchMediaType = "application/cloudevents-batch+json"

// readEvent reads one event from the request body, with the caller as its
// default source, and says whether the caller may have given its id.
func (a *API) readEvent(w http.ResponseWriter, r *http.Request) (*events.Event, bool, error) {
	body, err := readBody(w, r, MaxEventBody)
	if err != nil {
		return nil, false, err
	}
	caller, _ := IdentityFrom(r.Context())
	ev, err := events.Decode(body, "/vigil/api/"+caller.Name, a.now())
	return ev, events.IDGiven(body), err
}

// seenID returns the sequence of an event already stored with ev's id
// beyond JetStream's duplicate window, when there is one. A failed lookup
// is logged and the event published: the window still holds.
func (a *API) seenID(ctx context.Context, ev *events.Event) (uint64, bool) {
	if a.ids == nil {
		return 0, false
	}
	seq, ok, err := a.ids.Lookup(ctx, ev.ID)
	if err != nil {
		a.log.Warn("event id lookup", "id", ev.ID, "err", err)
		return 0, false
	}
	return seq, ok
}

// rememberID records a newly stored event's id.
func (a *API) rememberID(ctx context.Context, ev *events.Event, res events.PublishResult) {
	if a.ids == nil || res.Duplicate {
		return
	}
	if err := a.ids.Remember(ctx, ev.ID, res.Seq); err != nil {
		a.log.Warn("remember event id", "id", ev.ID, "err", err)
	}
}

func (a *API) handlePublish(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); strings.EqualFold(mt, batchMediaType) {
		a.handlePublishBatch(w, r)
		return
	}
	ev, given, err := a.readEvent(w, r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if given {
		if seq, ok := a.seenID(r.Context(), ev); ok {
			writeJSON(w, http.StatusCreated, publishAnswer{ID: ev.ID, Seq: seq, Duplicate: true})
			return
		}
	}
	res, err := a.bus.Publish(r.Context(), ev)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if given {
		a.rememberID(r.Context(), ev, res)
	}
	writeJSON(w, http.StatusCreated, publishAnswer{ID: ev.ID, Seq: res.Seq, Duplicate: res.Duplicate})
}

// handlePublishBatch stores a CloudEvents batch (a JSON array of events or
// bare records). Every event is validated before any is stored: one invalid
// event refuses the whole batch, naming it by index.
func (a *API) handlePublishBatch(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, MaxBatchBody)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var raws []json.RawMessage
	if err := decodeJSON(body, &raws, false); err != nil {
		a.writeError(w, r, err)
		return
	}
	if len(raws) == 0 || len(raws) > MaxEventBatch {
		a.writeError(w, r, errBadRequest("", "a batch holds 1 to %d events, got %d", MaxEventBatch, len(raws)))
		return
	}
	caller, _ := IdentityFrom(r.Context())
	source, now := "/vigil/api/"+caller.Name, a.now()
	evs := make([]*events.Event, len(raws))
	given := make([]bool, len(raws))
	for i, raw := range raws {
		if len(raw) > MaxEventBody {
			a.writeError(w, r, errBadRequest(fmt.Sprintf("[%d]", i), "event is over the %d-byte limit", MaxEventBody))
			return
		}
		ev, err := events.Decode(raw, source, now)
		if err != nil {
			var fe *events.FieldError
			if errors.As(err, &fe) {
				field := fmt.Sprintf("[%d]", i)
				if fe.Field != "" {
					field += "." + fe.Field
				}
				err = &Error{Status: http.StatusBadRequest, Code: CodeInvalidEvent, Field: field, Message: fe.Message}
			}
			a.writeError(w, r, err)
			return
		}
		evs[i], given[i] = ev, events.IDGiven(raw)
	}
	// Events whose ids were stored beyond the duplicate window are answered
	// from the ids bucket; the others are published together.
	out := make([]publishAnswer, len(evs))
	var send []*events.Event
	var at []int
	for i, ev := range evs {
		if given[i] {
			if seq, ok := a.seenID(r.Context(), ev); ok {
				out[i] = publishAnswer{ID: ev.ID, Seq: seq, Duplicate: true}
				continue
			}
		}
		send, at = append(send, ev), append(at, i)
	}
	if len(send) > 0 {
		res, err := a.bus.PublishBatch(r.Context(), send)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		for j, ev := range send {
			i := at[j]
			out[i] = publishAnswer{ID: ev.ID, Seq: res[j].Seq, Duplicate: res[j].Duplicate}
			if given[i] {
				a.rememberID(r.Context(), ev, res[j])
			}
		}
	}
	writeJSON(w, http.StatusCreated, map[string]any{"results": out})
}

// eventFilter parses the filter query parameters shared by the list and
// the stream. Unknown parameters are refused, so a typo cannot widen a
// filter silently.
func (a *API) eventFilter(r *http.Request, list bool) (events.Filter, error) {
	f := events.Filter{Limit: DefaultEventLimit}
	q := r.URL.Query()
	for name := range q {
		switch name {
		case "event_id", "obj_type", "obj_name", "since", "cursor":
		case "limit":
			if list {
				continue
			}
			fallthrough
		default:
			return f, errBadRequest(name, "unknown query parameter %q", name)
		}
	}
	f.EventID, f.ObjType, f.ObjName = q.Get("event_id"), q.Get("obj_type"), q.Get("obj_name")
	if f.EventID != "" && !eventIDRE.MatchString(f.EventID) {
		return f, errBadRequest("event_id", "must match ^[A-Z][A-Z0-9_]*$, got %q", f.EventID)
	}
	if s := q.Get("since"); s != "" {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			f.Since = t
		} else if d, err := time.ParseDuration(s); err == nil && d > 0 {
			f.Since = a.now().Add(-d)
		} else {
			return f, errBadRequest("since", "must be an RFC 3339 time or a positive duration such as 15m, got %q", s)
		}
	}
	var err error
	if f.Limit, err = queryLimit(r, DefaultEventLimit, MaxEventLimit); err != nil {
		return f, err
	}
	if s := q.Get("cursor"); s != "" {
		seq, err := strconv.ParseUint(s, 10, 64)
		if err != nil || seq == 0 {
			return f, errBadRequest("cursor", "must be a cursor from next_cursor, got %q", s)
		}
		f.StartSeq = seq
	}
	return f, nil
}

func (a *API) handleListEvents(w http.ResponseWriter, r *http.Request) {
	f, err := a.eventFilter(r, true)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	stored, next, err := a.bus.List(r.Context(), f)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := eventList{Events: make([]json.RawMessage, 0, len(stored))}
	for _, s := range stored {
		if !json.Valid(s.Data) {
			a.log.Error("skip stored event that is not JSON", "seq", s.Seq)
			continue
		}
		out.Events = append(out.Events, s.Data)
	}
	if next != 0 {
		out.NextCursor = strconv.FormatUint(next, 10)
	}
	writeJSON(w, http.StatusOK, out)
}

// rejectedList is the answer of GET /api/v1/events/rejected.
type rejectedList struct {
	Rejected   []events.Rejected `json:"rejected"`
	NextCursor string            `json:"next_cursor"`
}

func (a *API) handleListRejected(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for name := range q {
		if name != "limit" && name != "cursor" {
			a.writeError(w, r, errBadRequest(name, "unknown query parameter %q", name))
			return
		}
	}
	limit, err := queryLimit(r, DefaultEventLimit, MaxEventLimit)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var start uint64
	if s := q.Get("cursor"); s != "" {
		seq, err := strconv.ParseUint(s, 10, 64)
		if err != nil || seq == 0 {
			a.writeError(w, r, errBadRequest("cursor", "must be a cursor from next_cursor, got %q", s))
			return
		}
		start = seq
	}
	rej, next, err := a.bus.ListRejected(r.Context(), start, limit)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := rejectedList{Rejected: rej}
	if out.Rejected == nil {
		out.Rejected = []events.Rejected{}
	}
	if next != 0 {
		out.NextCursor = strconv.FormatUint(next, 10)
	}
	writeJSON(w, http.StatusOK, out)
}

// handleStream serves events as Server-Sent Events until the client goes
// away. Each event is `id: <seq>`, `event: <EVENT_ID>`, `data: <cloudevent>`;
// Last-Event-ID resumes after that sequence.
func (a *API) handleStream(w http.ResponseWriter, r *http.Request) {
	f, err := a.eventFilter(r, false)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	f.Limit = 0
	if s := r.Header.Get("Last-Event-ID"); s != "" {
		seq, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			a.writeError(w, r, errBadRequest("Last-Event-ID", "must be an event id from this stream, got %q", s))
			return
		}
		f.StartSeq, f.Since = seq+1, time.Time{}
	}

	rc, ok := a.beginEventStream(w)
	if !ok {
		return
	}
	ctx, cancel := a.untilStop(r.Context())
	defer cancel()
	evs := make(chan events.Stored)
	followed := make(chan error, 1)
	go func() {
		followed <- a.bus.Follow(ctx, f, func(s events.Stored) error {
			select {
			case evs <- s:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	defer func() {
		cancel()
		<-followed //nolint:errcheck // ended by cancel; the loop handled its error
	}()

	tick := time.NewTicker(a.keepAlive)
	defer tick.Stop()
	var buf bytes.Buffer
	for {
		buf.Reset()
		select {
		case s := <-evs:
			writeSSE(&buf, s)
		case <-tick.C:
			buf.WriteString(": keepalive\n\n")
		case err := <-followed:
			followed <- err // for the deferred wait
			if err != nil && ctx.Err() == nil {
				a.log.Error("event stream ended", "err", err)
			}
			return
		case <-ctx.Done():
			return
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// writeSSE frames one stored event.
func writeSSE(buf *bytes.Buffer, s events.Stored) {
	var head struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(s.Data, &head)
	fmt.Fprintf(buf, "id: %d\n", s.Seq)
	if eventIDRE.MatchString(head.Type) {
		fmt.Fprintf(buf, "event: %s\n", head.Type)
	}
	data := s.Data
	var compact bytes.Buffer
	if bytes.ContainsAny(data, "\r\n") && json.Compact(&compact, data) == nil {
		data = compact.Bytes()
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		buf.WriteString("data: ")
		buf.Write(bytes.TrimSuffix(line, []byte("\r")))
		buf.WriteByte('\n')
	}
	buf.WriteByte('\n')
}
