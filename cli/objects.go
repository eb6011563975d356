package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/cobra"

	"github.com/vigilhq/vigil/client"
	"github.com/vigilhq/vigil/config"
)

// addFileFlag adds the repeatable -f flag.
func addFileFlag(cmd *cobra.Command, paths *[]string, what string) {
	cmd.Flags().StringArrayVarP(paths, "filename", "f", nil, what+": a YAML or JSON file, a directory of them, or - for stdin (repeatable)")
}

// readObjects reads the objects of the -f paths, refusing an empty set.
func (e *env) readObjects(paths []string) ([]config.Source, error) {
	if len(paths) == 0 {
		return nil, usagef("no files: give -f FILE, -f DIR or -f -")
	}
	srcs, err := config.ReadObjectSources(paths, e.stdin)
	if err != nil {
		return nil, err
	}
	if len(srcs) == 0 {
		return nil, fmt.Errorf("no objects in %s", strings.Join(paths, ", "))
	}
	return srcs, nil
}

func objectsOf(srcs []config.Source) []*config.Object {
	objs := make([]*config.Object, len(srcs))
	for i, s := range srcs {
		objs[i] = s.Object
	}
	return objs
}

func (e *env) printResults(results []client.Result, dryRun bool) error {
	suffix := ""
	if dryRun {
		suffix = " (dry run)"
	}
	var b bytes.Buffer
	for _, r := range results {
		fmt.Fprintf(&b, "%s/%s %s%s\n", r.Kind, r.Name, r.Action, suffix)
	}
	_, err := e.stdout.Write(b.Bytes())
	return err
}

func (e *env) applyCmd() *cobra.Command {
	var (
		cf     clientFlags
		paths  []string
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR|- [-f ...]",
		Short: "Create or update the objects in files, all or nothing",
		Long: `Create or update the objects in YAML or JSON files, all or nothing: if one
object is invalid or its metadata.revision is stale, nothing is written.
Prints one line per object: created, updated or unchanged.`,
		Example: "  vigil apply -f secrets.yaml -f config/\n  vigil get secret db -o yaml | vigil apply -f -",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			srcs, err := e.readObjects(paths)
			if err != nil {
				return err
			}
			cl, err := e.client(&cf)
			if err != nil {
				return err
			}
			results, err := cl.Apply(cmd.Context(), objectsOf(srcs), dryRun)
			if err != nil {
				return err
			}
			return e.printResults(results, dryRun)
		},
	}
	addFileFlag(cmd, &paths, "objects to apply")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "validate and report what would change; write nothing")
	addClientFlags(cmd, &cf)
	return cmd
}

func (e *env) diffCmd() *cobra.Command {
	var (
		cf    clientFlags
		paths []string
	)
	cmd := &cobra.Command{
		Use:   "diff -f FILE|DIR|- [-f ...]",
		Short: "Show what apply would change",
		Long: `Show what 'vigil apply' would change, as a unified diff of each object's kind,
name and spec (metadata left out) between the server and the files. The
server computes the result with a dry run and writes nothing.

Exit status: 0 when nothing would change, 1 when something would, 2 on
errors.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			changed, err := e.diff(cmd, &cf, paths)
			var ue *usageError
			switch {
			case err != nil && !errors.As(err, &ue):
				return &exitError{code: 2, err: err}
			case err != nil:
				return err
			case changed:
				return &exitError{code: 1}
			}
			return nil
		},
	}
	addFileFlag(cmd, &paths, "objects to compare")
	addClientFlags(cmd, &cf)
	return cmd
}

// diff prints the differences and reports whether there are any.
func (e *env) diff(cmd *cobra.Command, cf *clientFlags, paths []string) (bool, error) {
	srcs, err := e.readObjects(paths)
	if err != nil {
		return false, err
	}
	cl, err := e.client(cf)
	if err != nil {
		return false, err
	}
	objs := objectsOf(srcs)
	results, err := cl.Apply(cmd.Context(), objs, true)
	if err != nil {
		return false, err
	}
	local := map[string]*config.Object{}
	for _, o := range objs {
		local[strings.ToLower(o.Kind)+"/"+o.Name] = o
	}
	var out bytes.Buffer
	changed := false
	for _, r := range results {
		if r.Action == "unchanged" {
			continue
		}
		changed = true
		id := r.Kind + "/" + r.Name
		applied := r.Object
		if applied == nil {
			applied = local[strings.ToLower(r.Kind)+"/"+r.Name]
		}
		live, err := diffText(r.Previous)
		if err != nil {
			return false, fmt.Errorf("%s: %w", id, err)
		}
		want, err := diffText(applied)
		if err != nil {
			return false, fmt.Errorf("%s: %w", id, err)
		}
		if live == want {
			fmt.Fprintf(&out, "# %s would be %s; the change is in values the server redacts\n", id, r.Action)
			continue
		}
		text, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
			A:        splitLines(live),
			B:        splitLines(want),
			FromFile: "live/" + id,
			ToFile:   "applied/" + id,
			Context:  3,
		})
		if err != nil {
			return false, fmt.Errorf("%s: diff: %w", id, err)
		}
		out.WriteString(text)
	}
	if _, err := e.stdout.Write(out.Bytes()); err != nil {
		return false, err
	}
	return changed, nil
}

// splitLines splits s after each newline; unlike difflib.SplitLines it adds
// no empty line at the end.
func splitLines(s string) []string {
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// diffText is the YAML of an object's kind, name and spec, with the keys of
// the spec sorted so that key order is no difference. A nil object is "".
func diffText(o *config.Object) (string, error) {
	if o == nil {
		return "", nil
	}
	spec := json.RawMessage("{}")
	if len(o.Spec) > 0 {
		dec := json.NewDecoder(bytes.NewReader(o.Spec))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return "", fmt.Errorf("decode spec: %w", err)
		}
		b, err := json.Marshal(v) // sorts the keys of maps
		if err != nil {
			return "", fmt.Errorf("encode spec: %w", err)
		}
		spec = b
	}
	data, err := json.Marshal(struct {
		Kind string          `json:"kind"`
		Name string          `json:"name"`
		Spec json.RawMessage `json:"spec"`
	}{o.Kind, o.Name, spec})
	if err != nil {
		return "", err
	}
	y, err := config.JSONToYAML(data)
	return string(y), err
}

func (e *env) validateCmd() *cobra.Command {
	var paths []string
	cmd := &cobra.Command{
		Use:   "validate -f FILE|DIR|- [-f ...]",
		Short: "Check objects offline, without a server",
		Long: `Check the objects in files offline, with the same validation the server
applies, and print every error, one per line, as file:line: Kind/name: field:
message. Prints "N objects valid" and exits 0 when all are; exits 1 otherwise.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			srcs, err := e.readObjects(paths)
			if err != nil {
				return err
			}
			var bad int
			var b bytes.Buffer
			for _, s := range srcs {
				if err := config.Kinds.Validate(s.Object); err != nil {
					bad++
					fmt.Fprintf(&b, "%s: %v\n", s.Pos(), err)
				}
			}
			if bad > 0 {
				if _, err := e.stderr.Write(b.Bytes()); err != nil {
					return err
				}
				return fmt.Errorf("%d of %s invalid", bad, plural(len(srcs), "object"))
			}
			_, err = fmt.Fprintf(e.stdout, "%s valid\n", plural(len(srcs), "object"))
			return err
		},
	}
	addFileFlag(cmd, &paths, "objects to check")
	return cmd
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// canonicalKind returns the registered spelling of kind ("secrets" → "Secret"),
// or kind as given, for the server to judge.
func canonicalKind(kind string) string {
	if k, ok := config.Kinds.Lookup(kind); ok {
		return k.Name
	}
	return kind
}

func (e *env) getCmd() *cobra.Command {
	var cf clientFlags
	output := newEnum("table", "table", "json", "yaml")
	cmd := &cobra.Command{
		Use:   "get KIND [NAME] | get kinds",
		Short: "Show objects",
		Long: `Show one object, all objects of a kind, or (get kinds) the kinds. Kinds match
without regard to case, and a plural works: 'vigil get secrets'.

-o table prints KIND NAME REVISION UPDATED UPDATED-BY; -o json prints the
object, or {"items": [...]} for a kind; -o yaml prints the object, or a
stream of YAML documents. What json and yaml print, 'vigil apply -f' reads
back.`,
		Example: "  vigil get kinds\n  vigil get secret\n  vigil get secret db -o yaml > db.yaml",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usagef("want KIND [NAME], got %d arguments", len(args))
			}
			return nil
		},
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			names := []string{"kinds"}
			for _, k := range config.Kinds.All() {
				names = append(names, k.Name)
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := e.client(&cf)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if len(args) == 1 && strings.EqualFold(args[0], "kinds") {
				if _, registered := config.Kinds.Lookup(args[0]); !registered {
					kinds, err := cl.Kinds(ctx)
					if err != nil {
						return err
					}
					return e.printKinds(kinds, output.value)
				}
			}
			kind := canonicalKind(args[0])
			if len(args) == 2 {
				obj, err := cl.Get(ctx, kind, args[1])
				if err != nil {
					return err
				}
				return e.printObjects([]*config.Object{obj}, output.value, false)
			}
			objs, err := cl.List(ctx, kind)
			if err != nil {
				return err
			}
			if len(objs) == 0 && output.value == "table" {
				_, err := fmt.Fprintf(e.stderr, "no %s objects\n", kind)
				return err
			}
			return e.printObjects(objs, output.value, true)
		},
	}
	cmd.Flags().VarP(output, "output", "o", "output format: table, json or yaml")
	addClientFlags(cmd, &cf)
	return cmd
}

func (e *env) printKinds(kinds []client.KindInfo, format string) error {
	switch format {
	case "json", "yaml":
		return e.printData(map[string]any{"kinds": kinds}, format)
	}
	t := newTable(e.stdout, "NAME", "DESCRIPTION")
	for _, k := range kinds {
		t.row(k.Name, k.Description)
	}
	return t.flush()
}

// printObjects prints objs; list says whether they answer a list request
// (json then wraps them in {"items": [...]}).
func (e *env) printObjects(objs []*config.Object, format string, list bool) error {
	switch format {
	case "json":
		if list {
			if objs == nil {
				objs = []*config.Object{}
			}
			return e.printData(map[string]any{"items": objs}, format)
		}
		return e.printData(objs[0], format)
	case "yaml":
		var b bytes.Buffer
		for _, o := range objs {
			data, err := json.Marshal(o)
			if err != nil {
				return fmt.Errorf("%s/%s: %w", o.Kind, o.Name, err)
			}
			y, err := config.JSONToYAML(data)
			if err != nil {
				return fmt.Errorf("%s/%s: %w", o.Kind, o.Name, err)
			}
			if list {
				b.WriteString("---\n")
			}
			b.Write(y)
		}
		_, err := e.stdout.Write(b.Bytes())
		return err
	}
	t := newTable(e.stdout, "KIND", "NAME", "REVISION", "UPDATED", "UPDATED-BY")
	for _, o := range objs {
		rev := "-"
		if o.Metadata.Revision != nil {
			rev = fmt.Sprint(*o.Metadata.Revision)
		}
		t.row(o.Kind, o.Name, rev, fmtTime(o.Metadata.Updated), dash(o.Metadata.UpdatedBy))
	}
	return t.flush()
}

func (e *env) deleteCmd() *cobra.Command {
	var (
		cf            clientFlags
		paths         []string
		dryRun        bool
		ignoreMissing bool
	)
	cmd := &cobra.Command{
		Use:   "delete KIND NAME | delete -f FILE|DIR|- [-f ...]",
		Short: "Delete objects",
		Long: `Delete one object, or the objects named in files, all or nothing. An object in
a file that carries metadata.revision is deleted only if it is unchanged since
that revision. Prints one line per object: deleted, or absent when it did not
exist and --ignore-missing is given.`,
		Example: "  vigil delete secret db\n  vigil delete -f secrets.yaml --ignore-missing",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(paths) > 0 {
				if len(args) > 0 {
					return usagef("give KIND NAME or -f, not both")
				}
				return nil
			}
			if len(args) != 2 {
				return usagef("want KIND NAME or -f FILE, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var refs []config.Ref
			if len(paths) > 0 {
				srcs, err := e.readObjects(paths)
				if err != nil {
					return err
				}
				for _, s := range srcs {
					refs = append(refs, s.Object.Ref())
				}
			}
			cl, err := e.client(&cf)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if refs == nil && !dryRun && !ignoreMissing {
				r, err := cl.Delete(ctx, canonicalKind(args[0]), args[1], nil)
				if err != nil {
					return err
				}
				return e.printResults([]client.Result{r}, false)
			}
			if refs == nil {
				refs = []config.Ref{{Kind: canonicalKind(args[0]), Name: args[1]}}
			}
			results, err := cl.DeleteMany(ctx, refs, dryRun, ignoreMissing)
			if err != nil {
				return err
			}
			return e.printResults(results, dryRun)
		},
	}
	addFileFlag(cmd, &paths, "objects to delete")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report what would be deleted; delete nothing")
	cmd.Flags().BoolVar(&ignoreMissing, "ignore-missing", false, "report missing objects as absent instead of failing")
	addClientFlags(cmd, &cf)
	return cmd
}
