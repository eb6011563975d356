package config

import (
	"errors"
	"fmt"
)

// ApplyOptions control Store.Apply.
type ApplyOptions struct {
	// User is recorded as metadata.updated_by and on the change event.
	User string
	// DryRun validates without writing.
	DryRun bool
	// Internal allows kinds marked Internal.
	Internal bool
}

// DeleteOptions control Store.Delete.
type DeleteOptions struct {
	// User is recorded on the change event.
	User string
	// DryRun checks without deleting.
	DryRun bool
	// IgnoreMissing reports absent objects as "absent" instead of failing.
	IgnoreMissing bool
	// Internal allows kinds marked Internal.
	Internal bool
}

// Result reports what a write did to one object.
type Result struct {
	Kind     string  `json:"kind"`
	Name     string  `json:"name"`
	Action   string  `json:"action"` // created, updated, unchanged, deleted, absent
	Revision uint64  `json:"revision"`
	Object   *Object `json:"object,omitempty"` // redacted
	Previous *Object `json:"previous"`         // redacted, or null
}

// Op is the kind of a Change.
type Op int

// The kinds of Change.
const (
	OpPut Op = iota + 1
	OpDelete
	OpSynced
)

// Change is one event from Store.Watch. For OpDelete, Object carries Kind and
// Name only.
type Change struct {
	Op       Op
	Object   *Object
	Revision uint64
	User     string
}

// ErrNotFound, ErrConflict, ErrTooMany are wrapped by store errors;
// ConflictError and NotFoundError name the object.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("revision conflict")
	ErrTooMany  = errors.New("too many objects in one batch")
)

// ConflictError reports a revision that is no longer current.
type ConflictError struct {
	Object           string // "Kind/name"
	Expected, Actual uint64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s: revision %d is stale (current %d)", e.Object, e.Expected, e.Actual)
}

// Is reports whether target is ErrConflict.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// NotFoundError reports an object that does not exist.
type NotFoundError struct {
	Object string // "Kind/name"
}

func (e *NotFoundError) Error() string { return e.Object + ": not found" }

// Is reports whether target is ErrNotFound.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }
