package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/events"
	"github.com/vigilhq/vigil/runner"
)

// Code is a stable API error code (the catalogue in docs/api.md).
type Code string

// The error codes.
const (
	CodeBadRequest       Code = "bad_request"
	CodeInvalidObject    Code = "invalid_object"
	CodeInvalidEvent     Code = "invalid_event"
	CodeUnknownKind      Code = "unknown_kind"
	CodeUnauthorized     Code = "unauthorized"
	CodeForbidden        Code = "forbidden"
	CodeNotFound         Code = "not_found"
	CodeMethodNotAllowed Code = "method_not_allowed"
	CodeConflict         Code = "conflict"
	CodeTooLarge         Code = "too_large"
	CodeInternal         Code = "internal"
	CodeUnavailable      Code = "unavailable"
	CodeQueueFull        Code = "queue_full"
)

// Error is an API error: an HTTP status and the body
// {"error": {"code", "message", "object", "field"}}.
type Error struct {
	Status int `json:"-"`
	// RetryAfter, when set, is the answer's Retry-After, in seconds.
	RetryAfter int    `json:"-"`
	Code       Code   `json:"code"`
	Message    string `json:"message"`
	Object     string `json:"object,omitempty"`
	Field      string `json:"field,omitempty"`
}

func (e *Error) Error() string {
	s := string(e.Code) + ": "
	if e.Object != "" {
		s += e.Object + ": "
	}
	if e.Field != "" {
		s += e.Field + ": "
	}
	return s + e.Message
}

// ErrorBody is the JSON envelope of every error answer.
type ErrorBody struct {
	Error *Error `json:"error"`
}

func errBadRequest(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Field: field, Message: fmt.Sprintf(format, args...)}
}

func errUnauthorized(msg string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: msg}
}

func errForbidden(msg string) *Error {
	return &Error{Status: http.StatusForbidden, Code: CodeForbidden, Message: msg}
}

func errNotFound(object, msg string) *Error {
	return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Object: object, Message: msg}
}

func errUnknownKind(kind string) *Error {
	return &Error{
		Status: http.StatusBadRequest, Code: CodeUnknownKind, Field: "kind",
		Message: fmt.Sprintf("unknown kind %q", kind),
	}
}

func errUnavailable(msg string) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: msg}
}

// toAPIError maps an error from a handler, the store or the bus to the API
// error catalogue. internal reports an error whose details must stay in the
// log.
func toAPIError(err error) (e *Error, internal bool) {
	var (
		ae  *Error
		fe  *config.FieldError
		efe *events.FieldError
		mbe *http.MaxBytesError
		ce  *config.ConflictError
		nfe *config.NotFoundError
	)
	switch {
	case errors.As(err, &ae):
		return ae, false
	case errors.As(err, &mbe):
		return &Error{
			Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge,
			Message: fmt.Sprintf("body is over the %d-byte limit", mbe.Limit),
		}, false
	case errors.Is(err, runner.ErrQueueFull):
		return &Error{
			// A place comes free as a run ends: a second is a fair wait.
			Status: http.StatusTooManyRequests, Code: CodeQueueFull, RetryAfter: 1,
			Message: "the run queue is full; try again later",
		}, false
	case errors.Is(err, runner.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: err.Error()}, false
	case errors.Is(err, runner.ErrFinal):
		return &Error{Status: http.StatusConflict, Code: CodeConflict, Message: err.Error()}, false
	case errors.Is(err, config.ErrUnknownKind):
		e := &Error{Status: http.StatusBadRequest, Code: CodeUnknownKind, Message: err.Error(), Field: "kind"}
		if errors.As(err, &fe) {
			e.Object, e.Field, e.Message = fe.Object, fe.Field, fe.Message
		}
		return e, false
	case errors.As(err, &fe):
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidObject, Object: fe.Object, Field: fe.Field, Message: fe.Message}, false
	case errors.As(err, &efe):
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidEvent, Field: efe.Field, Message: efe.Message}, false
	case errors.Is(err, config.ErrConflict):
		e := &Error{Status: http.StatusConflict, Code: CodeConflict, Message: err.Error()}
		if errors.As(err, &ce) {
			e.Object = ce.Object
		}
		return e, false
	case errors.Is(err, config.ErrNotFound):
		e := &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: err.Error()}
		if errors.As(err, &nfe) {
			e.Object = nfe.Object
		}
		return e, false
	case errors.Is(err, config.ErrTooMany):
		return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Field: "objects", Message: err.Error()}, false
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return errUnavailable("request canceled or timed out"), true
	}
	return &Error{
		Status: http.StatusInternalServerError, Code: CodeInternal,
		Message: "internal error; the server log has the details",
	}, true
}

// writeError answers with err in the API's error shape; errors that are not
// the caller's fault are logged with their details, which the answer omits.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e, internal := toAPIError(err)
	if internal {
		if r.Context().Err() != nil {
			a.log.Debug("request ended before its answer", "method", r.Method, "path", r.URL.Path, "err", err)
		} else {
			a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "route", r.Pattern, "err", err)
		}
	}
	writeErrorBody(w, e)
}

func writeErrorBody(w http.ResponseWriter, e *Error) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	writeJSON(w, e.Status, ErrorBody{Error: e})
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // "<redacted>" reads as written
	err := enc.Encode(v)
	body := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"error":{"code":"internal","message":"encode answer"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
