package controller

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/vigilhq/vigil/runner"
)

// The OpenAPI document is generated from the route table; only the
// component schemas below are written by hand.

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

func arrayOf(items any) map[string]any { return map[string]any{"type": "array", "items": items} }

func objectOf(field string, schema any) map[string]any {
	return map[string]any{
		"type": "object", "required": []string{field},
		"properties": map[string]any{field: schema},
	}
}

var textSchema = map[string]any{"type": "string"}

func str(desc string) map[string]any { return map[string]any{"type": "string", "description": desc} }

func nullable(typ, format, desc string) map[string]any {
	m := map[string]any{"type": []string{typ, "null"}, "description": desc}
	if format != "" {
		m["format"] = format
	}
	return m
}

// queryParams describes every query parameter a route may list.
var queryParams = map[string]map[string]any{
	"dry_run":  {"type": "boolean", "description": "Validate only; write nothing."},
	"revision": {"type": "integer", "minimum": 0, "description": "Delete only if the object is still at this revision."},
	"event_id": {"type": "string", "pattern": "^[A-Z][A-Z0-9_]*$", "description": "Only events with this event id."},
	"obj_type": {"type": "string", "description": "Only events about objects of this type."},
	"obj_name": {"type": "string", "description": "Only events about the object with this name."},
	"since":    {"type": "string", "description": "RFC 3339 time, or a duration such as 15m meaning that long ago."},
	"limit":    {"type": "integer", "minimum": 1, "maximum": MaxEventLimit, "default": DefaultEventLimit, "description": "At most this many items."},
	"cursor":   {"type": "string", "description": "A next_cursor from an earlier answer."},
	"wait":     {"type": "boolean", "description": "Answer once the execution is final (200), not when it is queued (202)."},
	"script":   {"type": "string", "description": "Only executions of this ControlScript."},
	"status":   {"type": "string", "enum": ExecutionStatuses, "description": "Only executions with this status."},
	"follow":   {"type": "boolean", "description": "Stream the output as Server-Sent Events until the execution ends."},
	"config":   {"type": "string", "description": "Only alerts of this AlertConfig."},
	"state":    {"type": "string", "enum": AlertStates, "description": "Only alerts in this state."},
}

// headerParams describes the request headers a route may read.
var headerParams = map[string]map[string]any{
	"Last-Event-ID": {"type": "string", "description": "Resume after this event (an SSE id from this stream)."},
}

var componentSchemas = map[string]any{
	"Error": map[string]any{
		"type": "object", "required": []string{"error"},
		"properties": map[string]any{"error": map[string]any{
			"type": "object", "required": []string{"code", "message"},
			"properties": map[string]any{
				"code": map[string]any{"type": "string", "enum": []Code{
					CodeBadRequest, CodeInvalidObject, CodeInvalidEvent, CodeUnknownKind, CodeUnauthorized,
					CodeForbidden, CodeNotFound, CodeMethodNotAllowed, CodeConflict, CodeTooLarge, CodeInternal, CodeUnavailable,
					CodeQueueFull,
				}},
				"message": str("What went wrong, for people."),
				"object":  str("The object concerned, Kind/name."),
				"field":   str("The field path concerned, e.g. spec.data."),
			},
		}},
	},
	"Object": map[string]any{
		"type": "object", "required": []string{"spec"},
		"properties": map[string]any{
			"kind": str("The kind, matched without regard to case."),
			"name": map[string]any{
				"type": "string", "maxLength": 128,
				"pattern": `^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$`,
			},
			"spec": map[string]any{"type": "object", "description": "Kind-specific."},
			"metadata": map[string]any{
				"type": "object", "description": "Set by vigil; revision is read on writes.",
				"properties": map[string]any{
					"uuid":       str("<kind>-<uuid>, stable for the object's life."),
					"tenant":     str("Always admin for now."),
					"revision":   map[string]any{"type": "integer", "description": "Changes on every write; on apply, 0 means create only and N means only if unchanged."},
					"created":    map[string]any{"type": "string", "format": "date-time"},
					"updated":    map[string]any{"type": "string", "format": "date-time"},
					"updated_by": str("The token name of the last writer."),
				},
			},
		},
	},
	"Result": map[string]any{
		"type": "object", "required": []string{"kind", "name", "action", "revision"},
		"properties": map[string]any{
			"kind":     map[string]any{"type": "string"},
			"name":     map[string]any{"type": "string"},
			"action":   map[string]any{"type": "string", "enum": []string{"created", "updated", "unchanged", "deleted", "absent"}},
			"revision": map[string]any{"type": "integer"},
			"object":   ref("Object"),
			"previous": map[string]any{"oneOf": []any{ref("Object"), map[string]any{"type": "null"}}},
		},
	},
	"Event": map[string]any{
		"type":        "object",
		"description": "A CloudEvents 1.0 structured event whose data is an Avi-style record, or the bare record alone.",
		"properties": map[string]any{
			"specversion": map[string]any{"type": "string", "const": "1.0"},
			"id":          str("Unique per occurrence and the dedup key; a UUIDv7 when absent."),
			"source":      str("The producer."),
			"type":        map[string]any{"type": "string", "pattern": "^[A-Z][A-Z0-9_]*$", "description": "The event id."},
			"subject":     str("<obj_type>/<obj_name>."),
			"time":        map[string]any{"type": "string", "format": "date-time"},
			"data":        ref("EventRecord"),
		},
	},
	"EventRecord": map[string]any{
		"type": "object", "required": []string{"event_id"},
		"properties": map[string]any{
			"event_id":         map[string]any{"type": "string", "pattern": "^[A-Z][A-Z0-9_]*$"},
			"module":           map[string]any{"type": "string"},
			"obj_type":         map[string]any{"type": "string"},
			"obj_name":         map[string]any{"type": "string"},
			"obj_uuid":         map[string]any{"type": "string"},
			"tenant":           map[string]any{"type": "string"},
			"report_timestamp": map[string]any{"type": "integer"},
			"event_details":    map[string]any{"type": "object"},
		},
	},
	"PublishResult": map[string]any{
		"type": "object", "required": []string{"id", "seq", "duplicate"},
		"properties": map[string]any{
			"id":        map[string]any{"type": "string"},
			"seq":       map[string]any{"type": "integer"},
			"duplicate": map[string]any{"type": "boolean"},
		},
	},
	"EventList": map[string]any{
		"type": "object", "required": []string{"events", "next_cursor"},
		"properties": map[string]any{
			"events":      arrayOf(ref("Event")),
			"next_cursor": str("Empty when nothing more is stored now."),
		},
	},
	"RejectedList": map[string]any{
		"type": "object", "required": []string{"rejected", "next_cursor"},
		"properties": map[string]any{
			"rejected": arrayOf(map[string]any{
				"type": "object", "required": []string{"seq", "time", "subject", "reason", "data"},
				"properties": map[string]any{
					"seq": map[string]any{"type": "integer"}, "time": str("RFC 3339"),
					"subject": str("The ingest subject it was published on."), "reason": str("Why it was refused."),
					"field": str("The field that failed, when one did."), "data": str("The payload, cut at 4 KiB."),
					"truncated": map[string]any{"type": "boolean"},
				},
			}),
			"next_cursor": str("Empty when nothing more is stored now."),
		},
	},
	"Kind": map[string]any{
		"type": "object", "required": []string{"name", "description"},
		"properties": map[string]any{"name": map[string]any{"type": "string"}, "description": map[string]any{"type": "string"}},
	},
	"ApplyRequest": map[string]any{
		"type": "object", "required": []string{"objects"}, "additionalProperties": false,
		"properties": map[string]any{
			"objects": map[string]any{"type": "array", "maxItems": 1000, "items": ref("Object")},
			"dry_run": map[string]any{"type": "boolean"},
		},
	},
	"DeleteRequest": map[string]any{
		"type": "object", "required": []string{"objects"}, "additionalProperties": false,
		"properties": map[string]any{
			"objects": map[string]any{"type": "array", "maxItems": 1000, "items": map[string]any{
				"type": "object", "required": []string{"kind", "name"},
				"properties": map[string]any{
					"kind": map[string]any{"type": "string"}, "name": map[string]any{"type": "string"},
					"revision": map[string]any{"type": "integer"},
				},
			}},
			"dry_run":        map[string]any{"type": "boolean"},
			"ignore_missing": map[string]any{"type": "boolean"},
		},
	},
	"Identity": map[string]any{
		"type": "object", "required": []string{"name", "role", "expires"},
		"properties": map[string]any{
			"name":    map[string]any{"type": "string"},
			"role":    ref("Role"),
			"expires": nullable("string", "date-time", "Null when the token does not expire."),
		},
	},
	"Role": map[string]any{"type": "string", "enum": Roles},
	"TokenRequest": map[string]any{
		"type": "object", "required": []string{"role"}, "additionalProperties": false,
		"properties": map[string]any{
			"name":        str("Generated when absent."),
			"role":        ref("Role"),
			"ttl":         str("A duration such as 720h; absent means the token does not expire."),
			"description": map[string]any{"type": "string"},
		},
	},
	"NewToken": map[string]any{
		"type": "object", "required": []string{"name", "role", "expires", "token"},
		"properties": map[string]any{
			"name":    map[string]any{"type": "string"},
			"role":    ref("Role"),
			"expires": nullable("string", "date-time", "Null when the token does not expire."),
			"token":   map[string]any{"type": "string", "pattern": "^vgl_[A-Za-z0-9_-]{43}$", "description": "Shown only here."},
		},
	},
	"TokenInfo": map[string]any{
		"type": "object", "required": []string{"name", "role"},
		"properties": map[string]any{
			"name":        map[string]any{"type": "string"},
			"role":        ref("Role"),
			"expires":     nullable("string", "date-time", ""),
			"created":     nullable("string", "date-time", ""),
			"created_by":  map[string]any{"type": "string"},
			"description": map[string]any{"type": "string"},
		},
	},
	"RunRequest": map[string]any{
		"type": "object", "additionalProperties": false,
		"description": "The body is optional; an empty body runs the script without an alert.",
		"properties": map[string]any{
			"alert": map[string]any{"type": "object", "description": "Passed to the script as its alert (sys.argv[1])."},
			"wait":  map[string]any{"type": "boolean", "description": "Answer once the execution is final (200), not when it is queued (202)."},
		},
	},
	"ExecutionStatus": map[string]any{
		"type": "string", "enum": ExecutionStatuses,
		"description": "queued and running are in progress; the others are final.",
	},
	"Execution": map[string]any{
		"type": "object", "required": []string{"id", "script", "trigger", "attempt", "status", "queued", "stdout", "stderr"},
		"properties": map[string]any{
			"id":                 str("exec-<uuidv7>; ids sort by the time they were queued."),
			"script":             str("The ControlScript's name."),
			"script_revision":    map[string]any{"type": "integer", "description": "The ControlScript's revision when queued."},
			"trigger":            map[string]any{"type": "string", "enum": []string{runner.TriggerManual, runner.TriggerAlert, runner.TriggerSchedule}},
			"triggered_by":       str("The token name of a manual run, or what raised the alert or schedule."),
			"alert":              map[string]any{"type": "object", "description": "The alert the script was given."},
			"attempt":            map[string]any{"type": "integer", "minimum": 1},
			"retry_of":           str("The execution this one retries."),
			"status":             ref("ExecutionStatus"),
			"reason":             str("Why the execution ended as it did, for people."),
			"runner":             str("The runner that ran it."),
			"queued":             map[string]any{"type": "string", "format": "date-time"},
			"started":            map[string]any{"type": "string", "format": "date-time"},
			"first_line":         map[string]any{"type": "string", "format": "date-time", "description": "When the script's first instruction ran."},
			"finished":           map[string]any{"type": "string", "format": "date-time"},
			"exit_code":          map[string]any{"type": "integer"},
			"signal":             str("The signal that ended the script, such as SIGKILL."),
			"stdout":             str("The script's standard output, up to limits.output."),
			"stderr":             str("The script's standard error, up to limits.output."),
			"stdout_truncated":   map[string]any{"type": "boolean"},
			"stderr_truncated":   map[string]any{"type": "boolean"},
			"cpu_time_ms":        map[string]any{"type": "integer"},
			"peak_memory":        map[string]any{"type": "integer", "description": "Bytes."},
			"killed_descendants": map[string]any{"type": "integer", "description": "Processes left behind by the script and killed at its end."},
			"enforcement": map[string]any{
				"type": "object", "additionalProperties": map[string]any{"type": "string"},
				"description": "Each limit and the mechanism that enforced it.",
			},
			"warm": map[string]any{"type": "boolean", "description": "Ran in a warm interpreter."},
		},
	},
	"ExecutionLogs": map[string]any{
		"type": "object", "required": []string{"stdout", "stderr", "stdout_truncated", "stderr_truncated", "status"},
		"properties": map[string]any{
			"stdout":           map[string]any{"type": "string"},
			"stderr":           map[string]any{"type": "string"},
			"stdout_truncated": map[string]any{"type": "boolean"},
			"stderr_truncated": map[string]any{"type": "boolean"},
			"status":           ref("ExecutionStatus"),
		},
	},
	"Alert": map[string]any{
		"type": "object", "required": []string{"id", "config", "key", "state", "level", "raised", "throttle_count", "events", "summary"},
		"properties": map[string]any{
			"id":                   str("alert-<uuidv7>"),
			"config":               str("The AlertConfig."),
			"key":                  str("The group key: the group_by values as a JSON array."),
			"state":                map[string]any{"type": "string", "enum": AlertStates},
			"level":                map[string]any{"type": "string", "enum": []string{"low", "medium", "high"}},
			"obj_type":             map[string]any{"type": "string"},
			"obj_name":             map[string]any{"type": "string"},
			"obj_uuid":             map[string]any{"type": "string"},
			"raised":               map[string]any{"type": "string", "format": "date-time"},
			"acted":                map[string]any{"type": "string", "format": "date-time", "description": "When its actions last ran."},
			"throttle_count":       map[string]any{"type": "integer", "description": "Matches counted since the actions last ran."},
			"events":               arrayOf(map[string]any{"type": "object", "description": "An event record (Avi's EventLog shape)."}),
			"summary":              map[string]any{"type": "string"},
			"actions":              arrayOf(ref("ActionOutcome")),
			"action_script_output": str("The output of the ControlScript's last run."),
		},
	},
	"ActionOutcome": map[string]any{
		"type": "object", "required": []string{"key", "kind", "target", "status", "tries", "at"},
		"properties": map[string]any{
			"key":       str("The idempotency key, the same on every retry and replay (a webhook's webhook-id)."),
			"kind":      map[string]any{"type": "string"},
			"target":    str("Which action of the group, e.g. webhooks[0]."),
			"resolve":   map[string]any{"type": "boolean"},
			"status":    map[string]any{"type": "string", "enum": []string{"queued", "running", "delivered", "retrying", "dead", "failed"}},
			"tries":     map[string]any{"type": "integer"},
			"error":     map[string]any{"type": "string"},
			"at":        map[string]any{"type": "string", "format": "date-time"},
			"execution": str("The ControlScript's execution."),
		},
	},
	"TestResult": map[string]any{
		"type": "object", "required": []string{"config", "matched"},
		"properties": map[string]any{
			"config":  map[string]any{"type": "string"},
			"matched": map[string]any{"type": "boolean"},
			"reason":  str("Why the event does not match."),
			"key":     map[string]any{"type": "string"},
			"outcome": str("raise, act, throttle, resolve, collect, silenced by NAME or dropped (why)."),
			"alert":   ref("Alert"),
			"actions": arrayOf(ref("ActionOutcome")),
		},
	},
	"DeadLetter": map[string]any{
		"type": "object", "required": []string{"seq", "request", "error", "tries", "at"},
		"properties": map[string]any{
			"seq":     map[string]any{"type": "integer", "description": "What replay takes."},
			"request": map[string]any{"type": "object", "description": "The action request: key, kind, index, group, config, group_key, notice."},
			"error":   map[string]any{"type": "string"},
			"status":  map[string]any{"type": "integer", "description": "The receiver's HTTP status, when there was one."},
			"tries":   map[string]any{"type": "integer"},
			"at":      map[string]any{"type": "string", "format": "date-time"},
		},
	},
	"DeadLetterList": map[string]any{
		"type": "object", "required": []string{"items"},
		"properties": map[string]any{
			"items":       arrayOf(ref("DeadLetter")),
			"next_cursor": str("Pass as cursor for the next page; absent at the end."),
		},
	},
	"Health": map[string]any{
		"type": "object",
		"properties": map[string]any{
			"status":  map[string]any{"type": "string"},
			"version": map[string]any{"type": "string"},
		},
	},
}

var pathParamRE = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// buildOpenAPI renders the OpenAPI 3.1 document from the route table.
func (a *API) buildOpenAPI() ([]byte, error) {
	paths := map[string]map[string]any{}
	errResp := map[string]any{
		"description": "An error.",
		"content":     map[string]any{"application/json": map[string]any{"schema": ref("Error")}},
	}
	for _, rt := range a.routes {
		op := map[string]any{
			"operationId":  operationID(rt),
			"summary":      rt.Summary,
			"x-vigil-auth": rt.Auth,
		}
		if rt.Perm != PermNone {
			op["x-vigil-perm"] = rt.Perm
		}
		switch rt.Auth {
		case AuthToken:
			op["security"] = []map[string][]string{{"bearer": {}}}
		default:
			op["security"] = []map[string][]string{}
		}
		var params []map[string]any
		for _, m := range pathParamRE.FindAllStringSubmatch(rt.Pattern, -1) {
			params = append(params, map[string]any{
				"name": m[1], "in": "path", "required": true,
				"schema": map[string]any{"type": "string"},
			})
		}
		for _, q := range rt.doc.query {
			params = append(params, map[string]any{
				"name": q, "in": "query", "schema": queryParams[q],
				"description": queryParams[q]["description"],
			})
		}
		for _, h := range rt.doc.headers {
			params = append(params, map[string]any{
				"name": h, "in": "header", "schema": headerParams[h],
				"description": headerParams[h]["description"],
			})
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.doc.body != nil {
			op["requestBody"] = map[string]any{
				"required": !rt.doc.optionalBody,
				"content":  map[string]any{"application/json": map[string]any{"schema": rt.doc.body}},
			}
		}
		status := rt.doc.status
		if status == 0 {
			status = http.StatusOK
		}
		content := map[string]any{}
		switch {
		case rt.Pattern == "/metrics":
			content["text/plain"] = map[string]any{"schema": textSchema}
		case rt.doc.resp != nil:
			content["application/json"] = map[string]any{"schema": rt.doc.resp}
		}
		if rt.doc.stream {
			content["text/event-stream"] = map[string]any{"schema": textSchema}
		}
		responses := map[string]any{"default": errResp}
		for _, st := range append([]int{status}, rt.doc.also...) {
			ok := map[string]any{"description": http.StatusText(st)}
			if len(content) > 0 {
				ok["content"] = content
			}
			responses[strconv.Itoa(st)] = ok
		}
		op["responses"] = responses
		if paths[rt.Pattern] == nil {
			paths[rt.Pattern] = map[string]any{}
		}
		paths[rt.Pattern][strings.ToLower(rt.Method)] = op
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "vigil API",
			"version":     versionOr(a.version),
			"description": "vigil's REST API. Every error has the shape of the Error schema.",
		},
		"paths": paths,
		"components": map[string]any{
			"schemas": componentSchemas,
			"securitySchemes": map[string]any{
				"bearer": map[string]any{
					"type": "http", "scheme": "bearer",
					"description": "A vigil token: vgl_ and 43 base64url characters.",
				},
			},
		},
		"security": []map[string][]string{{"bearer": {}}},
	}
	return json.MarshalIndent(doc, "", "  ")
}

func versionOr(v string) string {
	if v == "" {
		return "dev"
	}
	return v
}

// operationID names an operation after its method and path, e.g.
// "get_api_v1_objects_kind_name".
func operationID(rt Route) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(rt.Method))
	for _, seg := range strings.Split(rt.Pattern, "/") {
		seg = strings.Trim(seg, "{}.")
		if seg == "" {
			continue
		}
		b.WriteByte('_')
		b.WriteString(strings.NewReplacer(".", "_", "-", "_").Replace(seg))
	}
	return b.String()
}
