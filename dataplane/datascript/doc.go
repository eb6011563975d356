// Package datascript runs Avi-compatible DataScripts: Lua chunks bound to
// HTTP events of a virtual service, with Avi's avi.* library (avi.vs,
// avi.http, avi.pool, avi.stringgroup, avi.ipgroup, avi.utils, avi.crypto,
// avi.ssl, the avi.* constants, string.beginswith/endswith/contains) and
// vigil's vigil.event.
//
// Compile turns a DataScriptSet into a Set once, at apply time: each chunk
// is parsed and compiled to a shared function prototype named
// `[string "<set>"]`, so that errors and avi.vs.log lines read as Avi's,
// and literal pool, group and rate-limiter names are checked against the
// set's lists. An Engine, one per virtual service, runs the sets of an
// event on a Txn (Run) and keeps what outlives a request.
//
// # Sandbox
//
// A Lua state opens only base, table, string, math and an os holding time,
// clock and date. dofile, loadfile, load, loadstring, require, module,
// collectgarbage, print, getfenv, setfenv, newproxy, io, package, debug,
// coroutine, string.dump and math.randomseed are absent: no code is loaded
// at run time and nothing reaches the file system or the process. Every
// chunk runs with its own globals table, which reads through to the
// library, and a chunk that leaves globals behind gets a fresh table for
// the next run; the library tables (avi, string, table, math, os, vigil and
// their sub-tables) are read-only proxies that refuse assignment, rawset,
// table.insert/remove/sort and setmetatable, and getmetatable gives false.
// pcall and xpcall cannot catch a terminal action (avi.http.response, send,
// redirect, close_conn) or the end of the budget. string.rep, string.format,
// string.gsub and table.concat refuse results over Env.MaxString (1 MiB by
// default); calls nest at most 200 deep and the value stack is bounded, so
// deep recursion or unpack of a huge table is a Lua error. String
// concatenation with .. and growing tables are bounded only by the time
// budget. Lua pattern matching runs in Go: gopher-lua's matcher tries
// every position of the subject, ~0.5µs a byte. string.find and
// string.match with a pattern that starts with literal text (say
// '"is_admin"%s*:') look for that text with strings.Index first and try
// the pattern only where it occurs, checking the budget between tries, so
// scanning a 1 MiB body costs well under a millisecond; other patterns,
// gmatch and gsub run without budget checks, so a pathological pattern on
// a large string can overrun the budget.
//
// # Budget
//
// Avi bounds a run with an instruction count (the SE group's
// datascript_timeout, 1,000,000 by default). gopher-lua has no count hook,
// so vigil bounds a run's wall-clock time instead: Env.Budget, 50ms by
// default. Each Lua state is its own context.Context, set once; a watchdog
// goroutine per engine, started while scripts run, closes a state's Done
// channel once its run's deadline has passed, and gopher-lua's VM, which
// checks the context before every instruction, raises an error. Measured on
// one core of an AMD EPYC server (BenchmarkInstructions), gopher-lua with
// this check runs about 19,000 simple instructions per millisecond, so
// Avi's 1,000,000 instructions take about 50ms: the default budget is about
// Avi's default. A state stopped by its budget is discarded, never reused.
// When every state is busy for Env.QueueWait, Run returns ErrBusy (the
// proxy answers 503); there are at most Env.MaxConcurrent states.
//
// # Scope of tables and limiters
//
// avi.vs.table_* tables, the buckets of avi.vs.ratelimit.exceed and
// avi.vs.rate_limit, and the rate of vigil.event belong to one Engine: they
// are per virtual service and per process, kept across Engine.Update, and
// not mirrored to other vigil processes as Avi mirrors tables across the
// service engines of a virtual service. Tables hold strings, numbers and
// booleans, at most 100,000 entries each (inserts beyond fail); limiters
// track at most 100,000 keys each, forgetting the least recently used of
// a sample when full.
//
// # Compatibility notes
//
// Where Avi's documentation is silent vigil chooses: get_header of a
// repeated header gives a table of its values; avi.vs.log joins its
// arguments with no separator; table_insert of a live key sets its lifetime
// again and returns true; get_response_body's offset is in bytes; response
// cookies' expires is a Unix time; avi.utils.md5_hash and sha1_hash give
// lower-case hex; stringgroup functions give the matched key as value for
// groups without values; avi.crypto.decrypt of data that does not decrypt
// gives nil. Header and cookie edits and set_path, set_uri and set_query
// are allowed in HTTP_REQ, HTTP_REQ_DATA and HTTP_LB_DONE (the request is
// not sent yet); avi.http.* in HTTP_RESP_FAILED only allows response,
// redirect and internal_status.
package datascript
