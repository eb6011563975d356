package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
)

// Error codes of the answers, as in the API's error catalogue.
const (
	codeBadRequest           = "bad_request"
	codeInvalidEvent         = "invalid_event"
	codeUnauthorized         = "unauthorized"
	codeForbidden            = "forbidden"
	codeNotFound             = "not_found"
	codeMethodNotAllowed     = "method_not_allowed"
	codeTooLarge             = "too_large"
	codeUnsupportedMediaType = "unsupported_media_type"
	codeRateLimited          = "rate_limited"
	codeInternal             = "internal"
	codeUnavailable          = "unavailable"
)

// requestError is an answer other than success: an HTTP status and the
// body {"error": {"code", "message", "object", "field"}}.
type requestError struct {
	status     int
	code       string
	object     string
	field, msg string
	retryAfter int   // seconds; 0: no Retry-After
	cause      error // for the log, never the answer
}

func (e *requestError) Error() string {
	if e.field == "" {
		return e.msg
	}
	return e.field + ": " + e.msg
}

// Unwrap returns the cause.
func (e *requestError) Unwrap() error { return e.cause }

func badRequest(field, format string, args ...any) *requestError {
	return &requestError{status: http.StatusBadRequest, code: codeBadRequest, field: field, msg: fmt.Sprintf(format, args...)}
}

// errorBody is the JSON envelope of an error answer.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Object  string `json:"object,omitempty"`
		Field   string `json:"field,omitempty"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, e *requestError) {
	var b errorBody
	b.Error.Code, b.Error.Message, b.Error.Object, b.Error.Field = e.code, e.msg, e.object, e.field
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(e.retryAfter))
	}
	writeJSON(w, e.status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	body := []byte(`{"error":{"code":"internal","message":"encode answer"}}` + "\n")
	if err := enc.Encode(v); err == nil {
		body = buf.Bytes()
	} else {
		status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
