// Package autoscale is the autoscale manager: the AutoscalePolicy kind that
// a Pool names, and the Manager that turns the alerts of ActionGroups with
// `autoscale: true` into SERVER_AUTOSCALE_OUT and SERVER_AUTOSCALE_IN
// events, with Avi's semantics — cooldowns, a maximum step, and the pool
// kept within min_size and max_size. The scripts that do the work (such as
// the bundled vcenter-scale-out) report back with _COMPLETE or _FAILED.
//
// Decisions and the operations in flight live in the JetStream KV bucket
// vigil_autoscale, written with revision checks, so that several
// instances decide as one.
package autoscale
