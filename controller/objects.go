package controller

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/vigilhq/vigil/config"
)

// applyRequest is the body of POST /api/v1/apply.
type applyRequest struct {
	Objects []*config.Object `json:"objects"`
	DryRun  bool             `json:"dry_run"`
}

// deleteRequest is the body of POST /api/v1/delete.
type deleteRequest struct {
	Objects       []config.Ref `json:"objects"`
	DryRun        bool         `json:"dry_run"`
	IgnoreMissing bool         `json:"ignore_missing"`
}

// kindInfo is one entry of GET /api/v1/kinds.
type kindInfo struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// decodeBody reads one JSON value of at most limit bytes from r's body into
// v. strict refuses unknown fields; trailing data is always refused.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any, strict bool) error {
	body, err := readBody(w, r, limit)
	if err != nil {
		return err
	}
	return decodeJSON(body, v, strict)
}

// readBody reads r's body, refusing more than limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, errBadRequest("", "read body: %v", err)
	}
	return body, nil
}

func decodeJSON(body []byte, v any, strict bool) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errBadRequest("", "the body is empty; a JSON document is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errBadRequest("", "malformed JSON: data after the document")
	}
	return nil
}

// jsonError turns a decoding error into a bad_request that names the field
// when it can, without Go type names.
func jsonError(err error) *Error {
	var (
		syn *json.SyntaxError
		ute *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn):
		return errBadRequest("", "malformed JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &ute):
		return errBadRequest(ute.Field, "malformed JSON: %s must not be a JSON %s", fieldOrDoc(ute.Field), ute.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errBadRequest("", "malformed JSON: unexpected end of the body")
	}
	return errBadRequest("", "malformed JSON: %v", err)
}

func fieldOrDoc(f string) string {
	if f == "" {
		return "the document"
	}
	return f
}

// queryLimit reads the limit query parameter: def when absent, else an
// integer from 1 to maxN.
func queryLimit(r *http.Request, def, maxN int) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxN {
		return 0, errBadRequest("limit", "must be an integer from 1 to %d, got %q", maxN, s)
	}
	return n, nil
}

func queryBool(r *http.Request, name string) (bool, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, errBadRequest(name, "must be true or false, got %q", s)
	}
	return b, nil
}

// lookupKind finds a registered kind by name, without regard to case.
func (a *API) lookupKind(name string) (*config.Kind, error) {
	k, ok := a.store.Registry().Lookup(name)
	if !ok {
		return nil, errUnknownKind(name)
	}
	return k, nil
}

// objectKind resolves and authorizes the kind of one object in a write.
func (a *API) objectKind(r *http.Request, kind, name string) (*config.Kind, error) {
	if kind == "" {
		return nil, &Error{
			Status: http.StatusBadRequest, Code: CodeInvalidObject, Object: "/" + name,
			Field: "kind", Message: "is required",
		}
	}
	k, err := a.lookupKind(kind)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Object = kind + "/" + name
		}
		return nil, err
	}
	if err := authorizeKind(r, k, true); err != nil {
		return nil, err
	}
	if k.Internal {
		return nil, &Error{
			Status: http.StatusBadRequest, Code: CodeInvalidObject, Object: k.Name + "/" + name,
			Field: "kind", Message: fmt.Sprintf("%s objects are written by vigil itself, not through the objects API", k.Name),
		}
	}
	return k, nil
}

func (a *API) handleKinds(w http.ResponseWriter, _ *http.Request) {
	all := a.store.Registry().All()
	out := make([]kindInfo, len(all))
	for i, k := range all {
		out[i] = kindInfo{Name: k.Name, Description: k.Description}
	}
	writeJSON(w, http.StatusOK, map[string]any{"kinds": out})
}

func (a *API) handleListObjects(w http.ResponseWriter, r *http.Request) {
	k, err := a.lookupKind(r.PathValue("kind"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := authorizeKind(r, k, false); err != nil {
		a.writeError(w, r, err)
		return
	}
	objs, err := a.store.List(r.Context(), k.Name)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	items := make([]*config.Object, len(objs))
	for i, obj := range objs {
		items[i] = a.withStatus(a.store.Redact(obj))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
}

// ObjectStatus gives the run-time status of an object, for the kinds it
// knows.
type ObjectStatus interface {
	ObjectStatus(kind, name string) (any, bool)
}

// withStatus adds the object's run-time status, if it has one.
func (a *API) withStatus(obj *config.Object) *config.Object {
	if a.status == nil || obj == nil {
		return obj
	}
	if st, ok := a.status.ObjectStatus(obj.Kind, obj.Name); ok {
		cp := *obj
		cp.Status = st
		return &cp
	}
	return obj
}

func (a *API) handleGetObject(w http.ResponseWriter, r *http.Request) {
	k, err := a.lookupKind(r.PathValue("kind"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := authorizeKind(r, k, false); err != nil {
		a.writeError(w, r, err)
		return
	}
	name := r.PathValue("name")
	obj, err := a.store.Get(r.Context(), k.Name, name)
	if errors.Is(err, config.ErrNotFound) {
		a.writeError(w, r, errNotFound(k.Name+"/"+name, "no such object"))
		return
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.withStatus(a.store.Redact(obj)))
}

func (a *API) handlePutObject(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	k, err := a.objectKind(r, r.PathValue("kind"), name)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	dryRun, err := queryBool(r, "dry_run")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var obj config.Object
	if err := decodeBody(w, r, MaxObjectBody, &obj, true); err != nil {
		a.writeError(w, r, err)
		return
	}
	id := k.Name + "/" + name
	if obj.Kind != "" {
		if bk, ok := a.store.Registry().Lookup(obj.Kind); !ok || bk.Name != k.Name {
			a.writeError(w, r, &Error{
				Status: http.StatusBadRequest, Code: CodeInvalidObject, Object: id, Field: "kind",
				Message: fmt.Sprintf("is %q but the path names %s", obj.Kind, k.Name),
			})
			return
		}
	}
	if obj.Name != "" && obj.Name != name {
		a.writeError(w, r, &Error{
			Status: http.StatusBadRequest, Code: CodeInvalidObject, Object: id, Field: "name",
			Message: fmt.Sprintf("is %q but the path names %q", obj.Name, name),
		})
		return
	}
	obj.Kind, obj.Name = k.Name, name
	caller, _ := IdentityFrom(r.Context())
	res, err := a.store.Apply(r.Context(), []*config.Object{&obj}, config.ApplyOptions{User: caller.Name, DryRun: dryRun})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if len(res) != 1 {
		a.writeError(w, r, fmt.Errorf("apply %s: store returned %d results for one object", id, len(res)))
		return
	}
	status := http.StatusOK
	if res[0].Action == "created" && !dryRun {
		status = http.StatusCreated
	}
	out := res[0].Object
	if out == nil {
		out = a.store.Redact(&obj)
	}
	writeJSON(w, status, out)
}

func (a *API) handleDeleteObject(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	k, err := a.objectKind(r, r.PathValue("kind"), name)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	ref := config.Ref{Kind: k.Name, Name: name}
	if s := r.URL.Query().Get("revision"); s != "" {
		rev, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			a.writeError(w, r, errBadRequest("revision", "must be a non-negative integer, got %q", s))
			return
		}
		ref.Revision = &rev
	}
	caller, _ := IdentityFrom(r.Context())
	res, err := a.store.Delete(r.Context(), []config.Ref{ref}, config.DeleteOptions{User: caller.Name})
	if errors.Is(err, config.ErrNotFound) {
		a.writeError(w, r, errNotFound(ref.String(), "no such object"))
		return
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": nonNil(res)})
}

func (a *API) handleApply(w http.ResponseWriter, r *http.Request) {
	var req applyRequest
	if err := decodeBody(w, r, MaxObjectBody, &req, true); err != nil {
		a.writeError(w, r, err)
		return
	}
	if len(req.Objects) > config.MaxBatch {
		a.writeError(w, r, errBadRequest("objects", "a batch holds at most %d objects, got %d", config.MaxBatch, len(req.Objects)))
		return
	}
	for i, obj := range req.Objects {
		if obj == nil {
			a.writeError(w, r, errBadRequest(fmt.Sprintf("objects[%d]", i), "must be an object, not null"))
			return
		}
		k, err := a.objectKind(r, obj.Kind, obj.Name)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		obj.Kind = k.Name
	}
	caller, _ := IdentityFrom(r.Context())
	res, err := a.store.Apply(r.Context(), req.Objects, config.ApplyOptions{User: caller.Name, DryRun: req.DryRun})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": nonNil(res)})
}

func (a *API) handleDelete(w http.ResponseWriter, r *http.Request) {
	var req deleteRequest
	if err := decodeBody(w, r, MaxObjectBody, &req, true); err != nil {
		a.writeError(w, r, err)
		return
	}
	if len(req.Objects) > config.MaxBatch {
		a.writeError(w, r, errBadRequest("objects", "a batch holds at most %d objects, got %d", config.MaxBatch, len(req.Objects)))
		return
	}
	for i := range req.Objects {
		ref := &req.Objects[i]
		k, err := a.objectKind(r, ref.Kind, ref.Name)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		ref.Kind = k.Name
	}
	caller, _ := IdentityFrom(r.Context())
	res, err := a.store.Delete(r.Context(), req.Objects, config.DeleteOptions{
		User: caller.Name, DryRun: req.DryRun, IgnoreMissing: req.IgnoreMissing,
	})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": nonNil(res)})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
