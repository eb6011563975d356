// Package schedule is vigil's cron source: the Schedule kind and the
// scheduler that fires its slots.
//
// A Schedule names a cron expression (robfig/cron/v3: five fields, six
// with seconds, or a descriptor such as @daily or @every 90s) read in an
// IANA time zone (default UTC), one action — run a ControlScript with an
// alert JSON shaped like Avi's scheduler runs (see Alert), or publish an
// event — a policy for missed slots and an enabled switch:
//
//	kind: Schedule
//	name: nightly-report
//	spec:
//	  cron: "30 2 * * *"
//	  timezone: Europe/Paris
//	  controlscript: report
//	  missed: catch_up
//	  catch_up_limit: 3
//
// Once per slot across instances. Every instance running a Service
// computes the same slots (those of "@every D" are the multiples of D since
// the Unix epoch). At a slot, each one creates the key
// "<schedule>.<slot unix ns>" in the KV bucket vigil_schedule_slots, with a
// TTL of twice the interval and at least an hour; the create succeeds for
// one of them, which runs the action. The action's ids derive from the
// schedule and the slot — the execution id ("exec-" and a UUID; the runner
// runs a repeated request once) and the published event's CloudEvents id
// — so a slot run again after a crash has the same effect. The claim is
// marked done once the run is recorded; a claim left unfinished for
// StaleClaim (its instance died in between) is taken over, conditionally
// on its revision, by the next instance that meets the slot — one that
// starts and runs it under the once or catch_up policy. Under skip such a
// slot is lost, as any slot missed is. A service that stops finishes the
// slots it has begun.
//
// After each slot the winner records the run (slot, time, status,
// execution or event id, error) in the KV bucket vigil_schedule_state,
// keyed by the schedule's name, and publishes SCHEDULER_ACTION_SUCCESS or
// SCHEDULER_ACTION_FAILURE (obj_type schedule, details under
// scheduler_action_info). A ControlScript slot succeeds when the run is
// queued; the script's own outcome is CONTROLSCRIPT_SUCCEEDED or _FAILED
// with the same execution id.
//
// Missed slots. When a service starts, and whenever a schedule is added or
// changed, the slots between the schedule's last recorded run (or its last
// change, when later) and now passed while no instance fired them. The
// policy decides: skip (the default) runs none; once runs the latest;
// catch_up runs the oldest ones, up to catch_up_limit, oldest first. Each
// is still claimed, so instances that restart together run each once, and
// the instance that handles them records how far it looked (State.Handled)
// before running any, so one that starts later does not count them again. A
// running service that falls behind (a stalled process, a jump of the
// clock) fires the latest due slot and treats the ones it skipped the same
// way.
//
// Status and List give each schedule's last run (by any instance, followed
// from vigil_schedule_state) and next slot.
package schedule
