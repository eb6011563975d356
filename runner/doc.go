// Package runner runs ControlScripts: the run queue on JetStream, the
// executions history in a KV bucket, the sandbox (a re-exec shim that builds
// namespaces, mounts, rlimits and the unprivileged user before the script's
// first instruction) and the cgroup v1/v2 manager that bounds each run.
package runner
