package config

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Kind describes one kind of object. Domain packages register their kinds in
// init functions; the store and the API refuse kinds that are not registered.
type Kind struct {
	// Name is the kind as written in files, e.g. "ControlScript".
	Name string
	// Description is one line for `vigil get kinds` and the API.
	Description string
	// Validate checks a spec. It returns a *FieldError whose Field is the
	// path inside the object (starting with "spec"), or another error.
	Validate func(spec json.RawMessage) error
	// Sensitive kinds (Secret, Token) are closed to a script's token; the
	// API shows them redacted. The role matrix lives in package controller.
	Sensitive bool
	// AdminOnly kinds may be written only by admins.
	AdminOnly bool
	// Internal kinds are written by vigil itself, never through apply.
	Internal bool
	// Seal turns an incoming spec into its stored form (for example it
	// encrypts a Secret's values with c). prev is the stored spec or nil.
	// Seal must keep a value that arrives redacted.
	Seal func(c Cipher, spec, prev json.RawMessage) (json.RawMessage, error)
	// Redact turns a stored spec into what the API shows.
	Redact func(spec json.RawMessage) json.RawMessage
}

// Registry holds the registered kinds.
type Registry struct {
	mu    sync.RWMutex
	kinds map[string]*Kind // by lower-case name
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{kinds: map[string]*Kind{}} }

// Kinds is the process-wide registry that init functions register into.
var Kinds = NewRegistry()

// Register adds k to the default registry; it panics on a duplicate or an
// invalid kind, as a programming error.
func Register(k Kind) { Kinds.Register(k) }

// Register adds k; it panics on a duplicate or an invalid kind.
func (r *Registry) Register(k Kind) {
	if k.Name == "" || strings.ContainsAny(k.Name, ". */>") {
		panic(fmt.Sprintf("config: invalid kind name %q", k.Name))
	}
	key := strings.ToLower(k.Name)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.kinds[key]; dup {
		panic(fmt.Sprintf("config: kind %s registered twice", k.Name))
	}
	kk := k
	r.kinds[key] = &kk
}

// Lookup finds a kind by name without regard to case; a trailing "s" is
// accepted as a plural.
func (r *Registry) Lookup(name string) (*Kind, bool) {
	key := strings.ToLower(name)
	r.mu.RLock()
	defer r.mu.RUnlock()
	if k, ok := r.kinds[key]; ok {
		return k, true
	}
	if k, ok := r.kinds[strings.TrimSuffix(key, "s")]; ok && strings.HasSuffix(key, "s") {
		return k, true
	}
	return nil, false
}

// All returns the registered kinds sorted by name.
func (r *Registry) All() []*Kind {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*Kind, 0, len(r.kinds))
	for _, k := range r.kinds {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Validate checks the envelope and the spec of obj, canonicalises its kind
// name, and returns a *FieldError naming the object and the field path.
func (r *Registry) Validate(obj *Object) error {
	id := obj.Kind + "/" + obj.Name
	if obj.Kind == "" {
		return &FieldError{Object: id, Field: "kind", Message: "is required"}
	}
	k, ok := r.Lookup(obj.Kind)
	if !ok {
		return &FieldError{Object: id, Field: "kind", Message: fmt.Sprintf("unknown kind %q (known: %s)", obj.Kind, r.names()), Err: ErrUnknownKind}
	}
	obj.Kind = k.Name
	id = obj.Kind + "/" + obj.Name
	if err := ValidateName(obj.Name); err != nil {
		return &FieldError{Object: id, Field: "name", Message: err.Error()}
	}
	if len(obj.Spec) == 0 || string(obj.Spec) == "null" {
		obj.Spec = json.RawMessage("{}")
	}
	if k.Validate == nil {
		return nil
	}
	if err := k.Validate(obj.Spec); err != nil {
		var fe *FieldError
		if asFieldError(err, &fe) {
			cp := *fe
			cp.Object = id
			if cp.Field == "" {
				cp.Field = "spec"
			}
			return &cp
		}
		return &FieldError{Object: id, Field: "spec", Message: err.Error(), Err: err}
	}
	return nil
}

func (r *Registry) names() string {
	ks := r.All()
	names := make([]string, len(ks))
	for i, k := range ks {
		names[i] = k.Name
	}
	return strings.Join(names, ", ")
}
