// Package config holds vigil's declarative objects: the envelope every kind
// shares, the registry where domain packages register their kinds, the parser
// for YAML and JSON files, and the JetStream KV store with revisions, atomic
// batches and watches.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Object is the envelope shared by every kind.
type Object struct {
	Kind     string          `json:"kind"`
	Name     string          `json:"name"`
	Spec     json.RawMessage `json:"spec,omitempty"`
	Metadata Metadata        `json:"metadata"`
	// Status is what vigil reports of the object at run time (a
	// Schedule's last and next run); set on reads, never stored, ignored
	// on apply.
	Status any `json:"status,omitempty"`
}

// Metadata is set by vigil. Revision is also read on apply: when set, the
// write happens only if the stored object is still at that revision.
type Metadata struct {
	UUID      string    `json:"uuid,omitempty"`
	Tenant    string    `json:"tenant,omitempty"`
	Revision  *uint64   `json:"revision,omitempty"`
	Created   time.Time `json:"created,omitzero"`
	Updated   time.Time `json:"updated,omitzero"`
	UpdatedBy string    `json:"updated_by,omitempty"`
}

// Ref names an object, optionally at a revision.
type Ref struct {
	Kind     string  `json:"kind"`
	Name     string  `json:"name"`
	Revision *uint64 `json:"revision,omitempty"`
}

// String returns "Kind/name".
func (r Ref) String() string { return r.Kind + "/" + r.Name }

// Ref returns the object's reference, carrying its revision.
func (o *Object) Ref() Ref { return Ref{Kind: o.Kind, Name: o.Name, Revision: o.Metadata.Revision} }

// Rev returns the object's revision, or 0 when it has none.
func (o *Object) Rev() uint64 {
	if o.Metadata.Revision == nil {
		return 0
	}
	return *o.Metadata.Revision
}

// DefaultTenant is the only tenant for now.
const DefaultTenant = "admin"

// MaxNameLen bounds object names.
const MaxNameLen = 128

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$`)

// ValidateName reports whether name can name an object. Names become KV keys
// and NATS subject tokens, so they are restricted to letters, digits, '-', '_'
// and single interior dots.
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("must not be empty")
	case len(name) > MaxNameLen:
		return fmt.Errorf("must be at most %d characters, got %d", MaxNameLen, len(name))
	case !nameRE.MatchString(name):
		return fmt.Errorf("%q must start with a letter or digit and hold only letters, digits, '-', '_' and single dots", name)
	}
	return nil
}

// FieldError is a validation failure that names the object and the field path
// (for example "spec.limits.memory").
type FieldError struct {
	Object  string // "Kind/name", empty when unknown
	Field   string
	Message string
	Err     error // optional cause
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Object != "" {
		b.WriteString(e.Object)
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

func (e *FieldError) Unwrap() error { return e.Err }

// Errorf returns a FieldError for field with a formatted message.
func Errorf(field, format string, args ...any) *FieldError {
	err := fmt.Errorf(format, args...)
	return &FieldError{Field: field, Message: err.Error(), Err: errors.Unwrap(err)}
}

// ErrUnknownKind is wrapped by errors about kinds that are not registered.
var ErrUnknownKind = errors.New("unknown kind")

func asFieldError(err error, target **FieldError) bool { return errors.As(err, target) }
