package controller

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Route is one entry of the route table, the single list that the mux, the
// OpenAPI document and the tests are built from.
type Route struct {
	// Method is the HTTP method ("GET" also serves HEAD).
	Method string
	// Pattern is the http.ServeMux path pattern, e.g.
	// "/api/v1/objects/{kind}/{name}".
	Pattern string
	// Auth is how the route authenticates its caller.
	Auth AuthClass
	// Perm is what the caller's role needs; PermObjectRead and
	// PermObjectWrite are refined per kind by [ObjectPerm].
	Perm Perm
	// Summary is one line for the OpenAPI document.
	Summary string

	handler http.HandlerFunc
	doc     routeDoc
}

// MuxPattern returns "METHOD /path", the pattern registered with the mux and
// the `route` label of the API's metrics.
func (rt Route) MuxPattern() string { return rt.Method + " " + rt.Pattern }

// routeDoc feeds the OpenAPI document.
type routeDoc struct {
	query        []string // names of query parameters, described in queryParams
	body         any      // request body schema, nil when none
	optionalBody bool     // the body may be left out
	status       int      // success status; 200 when zero
	also         []int    // other success statuses with the same answer
	resp         any      // success response schema, nil for an empty object
	stream       bool     // the answer is text/event-stream (besides resp, when set)
	headers      []string // request headers the route reads, described in headerParams
}

// routeTable lists every route. Auth class and perm are declared here and
// nowhere else.
func (a *API) routeTable() []Route {
	metricsAuth, metricsPerm := AuthToken, PermRead
	if a.metricsPublic {
		metricsAuth, metricsPerm = AuthPublic, PermNone
	}
	eventQuery := []string{"event_id", "obj_type", "obj_name", "since", "limit", "cursor"}
	return []Route{
		{
			Method: "GET", Pattern: "/healthz", Auth: AuthPublic, Perm: PermNone,
			Summary: "Liveness: the process serves HTTP.", handler: a.handleHealthz,
			doc: routeDoc{resp: ref("Health")},
		},
		{
			Method: "GET", Pattern: "/readyz", Auth: AuthPublic, Perm: PermNone,
			Summary: "Readiness: the bus answers and the tokens are loaded; 503 otherwise.", handler: a.handleReadyz,
			doc: routeDoc{resp: ref("Health")},
		},
		{
			Method: "GET", Pattern: "/metrics", Auth: metricsAuth, Perm: metricsPerm,
			Summary: "Prometheus metrics.", handler: promhttp.HandlerFor(a.gatherer, promhttp.HandlerOpts{}).ServeHTTP,
			doc: routeDoc{resp: textSchema},
		},
		{
			Method: "GET", Pattern: "/api/v1/openapi.json", Auth: AuthToken, Perm: PermRead,
			Summary: "This OpenAPI document.", handler: a.handleOpenAPI,
			doc: routeDoc{resp: map[string]any{"type": "object"}},
		},

		{
			Method: "GET", Pattern: "/api/v1/kinds", Auth: AuthToken, Perm: PermRead,
			Summary: "List the registered kinds.", handler: a.handleKinds,
			doc: routeDoc{resp: objectOf("kinds", arrayOf(ref("Kind")))},
		},
		{
			Method: "GET", Pattern: "/api/v1/objects/{kind}", Auth: AuthToken, Perm: PermObjectRead,
			Summary: "List the objects of a kind, sorted by name (Sensitive kinds redacted).", handler: a.handleListObjects,
			doc: routeDoc{resp: objectOf("items", arrayOf(ref("Object")))},
		},
		{
			Method: "GET", Pattern: "/api/v1/objects/{kind}/{name}", Auth: AuthToken, Perm: PermObjectRead,
			Summary: "Get one object (redacted).", handler: a.handleGetObject,
			doc: routeDoc{resp: ref("Object")},
		},
		{
			Method: "PUT", Pattern: "/api/v1/objects/{kind}/{name}", Auth: AuthToken, Perm: PermObjectWrite,
			Summary: "Create or update one object; metadata.revision makes it conditional.", handler: a.handlePutObject,
			doc: routeDoc{query: []string{"dry_run"}, body: ref("Object"), resp: ref("Object")},
		},
		{
			Method: "DELETE", Pattern: "/api/v1/objects/{kind}/{name}", Auth: AuthToken, Perm: PermObjectWrite,
			Summary: "Delete one object; ?revision=N deletes only if unchanged.", handler: a.handleDeleteObject,
			doc: routeDoc{query: []string{"revision"}, resp: objectOf("results", arrayOf(ref("Result")))},
		},
		{
			Method: "POST", Pattern: "/api/v1/apply", Auth: AuthToken, Perm: PermObjectWrite,
			Summary: "Create or update many objects, all or nothing.", handler: a.handleApply,
			doc: routeDoc{body: ref("ApplyRequest"), resp: objectOf("results", arrayOf(ref("Result")))},
		},
		{
			Method: "POST", Pattern: "/api/v1/delete", Auth: AuthToken, Perm: PermObjectWrite,
			Summary: "Delete many objects, all or nothing.", handler: a.handleDelete,
			doc: routeDoc{body: ref("DeleteRequest"), resp: objectOf("results", arrayOf(ref("Result")))},
		},

		{
			Method: "POST", Pattern: "/api/v1/events", Auth: AuthToken, Perm: PermPublish,
			Summary: "Publish an event (CloudEvents structured JSON or a bare record).", handler: a.handlePublish,
			doc: routeDoc{body: ref("Event"), status: http.StatusCreated, resp: ref("PublishResult")},
		},
		{
			Method: "GET", Pattern: "/api/v1/events", Auth: AuthToken, Perm: PermRead,
			Summary: "List stored events, oldest first.", handler: a.handleListEvents,
			doc: routeDoc{query: eventQuery, resp: ref("EventList")},
		},
		{
			Method: "GET", Pattern: "/api/v1/events/rejected", Auth: AuthToken, Perm: PermRead,
			Summary: "List messages from vigil.ingest.> that failed validation, with the reason, oldest first.", handler: a.handleListRejected,
			doc: routeDoc{query: []string{"limit", "cursor"}, resp: ref("RejectedList")},
		},
		{
			Method: "GET", Pattern: "/api/v1/events/stream", Auth: AuthToken, Perm: PermRead,
			Summary: "Follow events as Server-Sent Events; Last-Event-ID resumes.", handler: a.handleStream,
			doc: routeDoc{query: eventQuery[:5], headers: []string{"Last-Event-ID"}, stream: true},
		},

		{
			Method: "GET", Pattern: "/api/v1/whoami", Auth: AuthToken, Perm: PermRead,
			Summary: "The caller's token name, role and expiry.", handler: a.handleWhoami,
			doc: routeDoc{resp: ref("Identity")},
		},
		{
			Method: "POST", Pattern: "/api/v1/tokens", Auth: AuthToken, Perm: PermAdmin,
			Summary: "Create a token; the answer is the only time it is shown.", handler: a.handleCreateToken,
			doc: routeDoc{body: ref("TokenRequest"), status: http.StatusCreated, resp: ref("NewToken")},
		},
		{
			Method: "GET", Pattern: "/api/v1/tokens", Auth: AuthToken, Perm: PermPrivilegedRead,
			Summary: "List tokens (never their values or hashes).", handler: a.handleListTokens,
			doc: routeDoc{resp: objectOf("items", arrayOf(ref("TokenInfo")))},
		},
		{
			Method: "DELETE", Pattern: "/api/v1/tokens/{name}", Auth: AuthToken, Perm: PermAdmin,
			Summary: "Revoke a token; the next request with it gets 401.", handler: a.handleRevokeToken,
			doc: routeDoc{resp: objectOf("name", map[string]any{"type": "string"})},
		},

		{
			Method: "POST", Pattern: "/api/v1/controlscripts/{name}/run", Auth: AuthToken, Perm: PermRun,
			Summary: "Run a ControlScript: 202 with the queued execution, or with wait 200 with the final one.", handler: a.handleRun,
			doc: routeDoc{
				query: []string{"wait"}, body: ref("RunRequest"), optionalBody: true,
				status: http.StatusAccepted, also: []int{http.StatusOK}, resp: ref("Execution"),
			},
		},
		{
			Method: "GET", Pattern: "/api/v1/executions", Auth: AuthToken, Perm: PermRead,
			Summary: "List executions, newest first.", handler: a.handleListExecutions,
			doc: routeDoc{query: []string{"script", "status", "limit"}, resp: objectOf("items", arrayOf(ref("Execution")))},
		},
		{
			Method: "GET", Pattern: "/api/v1/executions/{id}", Auth: AuthToken, Perm: PermRead,
			Summary: "Get one execution.", handler: a.handleGetExecution,
			doc: routeDoc{resp: ref("Execution")},
		},
		{
			Method: "GET", Pattern: "/api/v1/executions/{id}/logs", Auth: AuthToken, Perm: PermRead,
			Summary: "An execution's output; ?follow=true streams it as Server-Sent Events until the execution ends.", handler: a.handleExecutionLogs,
			doc: routeDoc{query: []string{"follow"}, resp: ref("ExecutionLogs"), stream: true},
		},
		{
			Method: "POST", Pattern: "/api/v1/executions/{id}/cancel", Auth: AuthToken, Perm: PermRun,
			Summary: "Cancel a queued or running execution; answers once it has ended.", handler: a.handleCancelExecution,
			doc: routeDoc{resp: ref("Execution")},
		},

		{
			Method: "GET", Pattern: "/api/v1/alerts", Auth: AuthToken, Perm: PermRead,
			Summary: "List alerts, newest first.", handler: a.handleListAlerts,
			doc: routeDoc{query: []string{"config", "state", "limit"}, resp: objectOf("items", arrayOf(ref("Alert")))},
		},
		{
			Method: "GET", Pattern: "/api/v1/alerts/{id}", Auth: AuthToken, Perm: PermRead,
			Summary: "Get one alert, with its events and the outcome of each action.", handler: a.handleGetAlert,
			doc: routeDoc{resp: ref("Alert")},
		},
		{
			Method: "POST", Pattern: "/api/v1/alerts/{id}/dismiss", Auth: AuthToken, Perm: PermWrite,
			Summary: "Dismiss an alert: its actions stop, and the next match raises a new one.", handler: a.handleDismissAlert,
			doc: routeDoc{resp: ref("Alert")},
		},
		{
			Method: "POST", Pattern: "/api/v1/alerts/test", Auth: AuthToken, Perm: PermPublish,
			Summary: "What each AlertConfig would do with an event, from the current state, without doing it.", handler: a.handleTestAlerts,
			doc: routeDoc{body: ref("Event"), resp: objectOf("results", arrayOf(ref("TestResult")))},
		},
		{
			Method: "GET", Pattern: "/api/v1/deadletters", Auth: AuthToken, Perm: PermRead,
			Summary: "List the actions that could not be delivered, oldest first.", handler: a.handleListDeadLetters,
			doc: routeDoc{query: []string{"limit", "cursor"}, resp: ref("DeadLetterList")},
		},
		{
			Method: "POST", Pattern: "/api/v1/deadletters/{seq}/replay", Auth: AuthToken, Perm: PermRun,
			Summary: "Queue a dead letter's action again, with the same idempotency key.", handler: a.handleReplayDeadLetter,
			doc: routeDoc{resp: ref("DeadLetter")},
		},

		{
			Method: "POST", Pattern: "/hooks/{name}", Auth: AuthReceiver, Perm: PermNone,
			Summary: "A webhook receiver; it checks its own auth.", handler: a.handleHook,
			doc: routeDoc{body: map[string]any{}, resp: map[string]any{}},
		},
		{
			Method: "OPTIONS", Pattern: "/hooks/{name}", Auth: AuthReceiver, Perm: PermNone,
			Summary: "The CloudEvents webhook handshake (WebHook-Request-Origin) of a cloudevents receiver.", handler: a.handleHook,
		},
	}
}

// wrap applies the route's auth class and its route-level perm.
func (a *API) wrap(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch rt.Auth {
		case AuthToken:
			id, err := a.authenticate(r)
			if err != nil {
				a.writeError(w, r, err)
				return
			}
			if sw, ok := w.(*statusWriter); ok {
				sw.caller = id.Name
			}
			r = r.WithContext(withIdentity(r.Context(), id))
			if err := authorize(r, rt.Perm); err != nil {
				a.writeError(w, r, err)
				return
			}
		case AuthPublic, AuthReceiver:
		default:
			// A route without a known class is a bug; fail closed.
			a.writeError(w, r, errForbidden("route has no auth class"))
			return
		}
		rt.handler(w, r)
	})
}

func (a *API) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": a.version})
}

func (a *API) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if err := a.bus.Ready(); err != nil {
		a.log.Warn("not ready", "reason", "bus", "err", err)
		writeErrorBody(w, errUnavailable("event bus is not ready"))
		return
	}
	if !a.tokens.isSynced() {
		writeErrorBody(w, errUnavailable("tokens are not loaded yet"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": a.version})
}

func (a *API) handleOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(a.openapi)
}

// HooksHandler serves /hooks/{name} (POST, and OPTIONS for the CloudEvents
// handshake) and nothing else, for a listener
// of its own; the routes answer as on the API listener.
func (a *API) HooksHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hooks/{name}", a.handleHook)
	mux.HandleFunc("OPTIONS /hooks/{name}", a.handleHook)
	return mux
}

func (a *API) handleHook(w http.ResponseWriter, r *http.Request) {
	if a.hooks == nil {
		writeErrorBody(w, errNotFound("WebhookReceiver/"+r.PathValue("name"), "no such receiver"))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxHookBody)
	a.hooks.ServeHTTP(w, r)
}
