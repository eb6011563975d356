package dataplane

import (
	"encoding/json"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/dataplane/datascript"
	"github.com/vigilhq/vigil/dataplane/spec"
)

func init() {
	config.Register(config.Kind{
		Name: spec.KindVirtualService, Description: "a listener, its default pool and its DataScripts",
		Validate: func(raw json.RawMessage) error { _, err := spec.ParseVirtualService(raw); return err },
	})
	config.Register(config.Kind{
		Name: spec.KindPool, Description: "servers, how to balance between them, and their health monitors",
		Validate: func(raw json.RawMessage) error { _, err := spec.ParsePool(raw); return err },
	})
	config.Register(config.Kind{
		Name: spec.KindHealthMonitor, Description: "an HTTP or TCP check of a pool's servers",
		Validate: func(raw json.RawMessage) error { _, err := spec.ParseHealthMonitor(raw); return err },
	})
	config.Register(config.Kind{
		Name: spec.KindDataScriptSet, Description: "Lua DataScripts per HTTP event, with the objects they may name",
		Validate: validateDataScriptSet,
	})
	config.Register(config.Kind{
		Name: spec.KindStringGroup, Description: "strings or key/value pairs for DataScripts",
		Validate: func(raw json.RawMessage) error { _, err := spec.ParseStringGroup(raw); return err },
	})
	config.Register(config.Kind{
		Name: spec.KindIPGroup, Description: "addresses, prefixes and ranges for DataScripts",
		Validate: func(raw json.RawMessage) error { _, err := spec.ParseIPGroup(raw); return err },
	})
}

// validateDataScriptSet checks the set and compiles its scripts, so that a
// syntax error or a literal name missing from the refs is refused with the
// line.
func validateDataScriptSet(raw json.RawMessage) error {
	ds, err := spec.ParseDataScriptSet(raw)
	if err != nil {
		return err
	}
	_, err = datascript.Compile("datascript", ds)
	return err
}
