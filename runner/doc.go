// Package runner will hold the ControlScript runner pool: the sandbox
// (cgroups v1 and v2, rlimits, namespaces), warm interpreters and the
// executions history. It holds no code yet.
package runner
