package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vigilhq/vigil/client"
	"github.com/vigilhq/vigil/integrations"
)

func (e *env) integrationsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "integrations",
		Short: "List, show and install the bundled integrations",
		Long: `The integrations bundled with vigil: ControlScripts for vCenter scale-out and
scale-in, Slack, Microsoft Teams, PagerDuty, ServiceNow and signed webhooks.
'install' creates an integration's ControlScript (and the ActionGroup and
AlertConfig it comes with) on the server; its parameters are set with --set.`,
		Args: noSubcommand,
		RunE: showHelp,
	}
	cmd.AddCommand(e.integrationsListCmd(), e.integrationsShowCmd(), e.integrationsInstallCmd())
	return cmd
}

func (e *env) integrationsListCmd() *cobra.Command {
	output := newEnum("table", "table", "json", "yaml")
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the bundled integrations",
		Args:  noArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			list, err := integrations.List()
			if err != nil {
				return err
			}
			if output.value != "table" {
				return e.printData(list, output.value)
			}
			t := newTable(e.stdout, "NAME", "SECRETS", "SUMMARY")
			for _, in := range list {
				names := make([]string, len(in.Secrets))
				for i, s := range in.Secrets {
					names[i] = s.Name
				}
				t.row(in.Name, dash(strings.Join(names, ",")), in.Summary)
			}
			return t.flush()
		},
	}
	cmd.Flags().VarP(output, "output", "o", "output format")
	return cmd
}

func (e *env) integrationsShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Print an integration's README: what it does, its parameters and secrets, an example",
		Args:  exactArgs("NAME"),
		RunE: func(_ *cobra.Command, args []string) error {
			in, err := integrations.Get(args[0])
			if err != nil {
				return usagef("%v", err)
			}
			_, err = fmt.Fprint(e.stdout, in.README)
			return err
		},
	}
}

func (e *env) integrationsInstallCmd() *cobra.Command {
	var (
		cf     clientFlags
		sets   []string
		dryRun bool
	)
	output := newEnum("", "", "json", "yaml")
	cmd := &cobra.Command{
		Use:   "install NAME [--set PARAM=VALUE ...]",
		Short: "Create an integration's ControlScript and companion objects on the server",
		Long: `Create (or update) an integration's objects, all or nothing: its ControlScript,
named after it, with the parameters as its environment, and the objects it
comes with (an ActionGroup running the script; for vCenter, the AlertConfig
on SERVER_AUTOSCALE_OUT or _IN). The Secrets it reads are not created: the
command says which are missing and how to create them.

Installing again keeps the parameters the installed ControlScript has and
--set does not change, and updates the script.

-o yaml or -o json prints the objects instead of applying them, for a file
that 'vigil apply' or 'vigil serve --config' takes.`,
		Example: `  vigil integrations install slack
  vigil integrations install vcenter-scale-out --set VCENTER_TEMPLATE=web-template --set VCENTER_FOLDER=web
  vigil integrations install pagerduty -o yaml > pagerduty.yaml`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := integrations.Get(args[0])
			if err != nil {
				return usagef("%v", err)
			}
			set := map[string]string{}
			for _, s := range sets {
				k, v, ok := strings.Cut(s, "=")
				if !ok || k == "" {
					return usagef("--set %q: want PARAM=VALUE", s)
				}
				set[k] = v
			}
			if output.value != "" {
				objs, err := in.Build(set)
				if err != nil {
					return usagef("%v", err)
				}
				return e.printObjects(objs, output.value, true)
			}
			cl, err := e.client(&cf)
			if err != nil {
				return err
			}
			kept, err := keepParameters(cmd, cl, in, set)
			if err != nil {
				return err
			}
			objs, err := in.Build(set)
			if err != nil {
				return usagef("%v", err)
			}
			if len(kept) > 0 {
				fmt.Fprintf(e.stderr, "kept from the installed ControlScript %s: %s\n", in.Name, strings.Join(kept, ", "))
			}
			results, err := cl.Apply(cmd.Context(), objs, dryRun)
			if err != nil {
				return err
			}
			if err := e.printResults(results, dryRun); err != nil {
				return err
			}
			return e.checkSecrets(cmd, cl, in)
		},
	}
	cmd.Flags().StringArrayVar(&sets, "set", nil, "a parameter's value, PARAM=VALUE (repeatable; 'vigil integrations show NAME' lists them)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "validate and report what would change; write nothing")
	cmd.Flags().VarP(output, "output", "o", "print the objects as json or yaml instead of applying them")
	addClientFlags(cmd, &cf)
	return cmd
}

// keepParameters adds to set the parameters that an installed copy of the
// integration's ControlScript has in its environment and set does not
// name, so that installing again (say, after an upgrade of vigil) keeps
// what was set before. It returns their names.
func keepParameters(cmd *cobra.Command, cl *client.Client, in *integrations.Integration, set map[string]string) ([]string, error) {
	obj, err := cl.Get(cmd.Context(), "ControlScript", in.Name)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the installed ControlScript %s: %w", in.Name, err)
	}
	var spec struct {
		Env map[string]string `json:"env"`
	}
	_ = json.Unmarshal(obj.Spec, &spec)
	var kept []string
	for _, p := range in.Parameters {
		v, ok := spec.Env[p.Name]
		if _, given := set[p.Name]; given || !ok || v == p.Default {
			continue
		}
		set[p.Name] = v
		kept = append(kept, p.Name)
	}
	return kept, nil
}

// checkSecrets tells which of the integration's Secrets, or of their keys,
// the server lacks, and how to create them.
func (e *env) checkSecrets(cmd *cobra.Command, cl *client.Client, in *integrations.Integration) error {
	for _, s := range in.Secrets {
		var have map[string]bool
		obj, err := cl.Get(cmd.Context(), "Secret", s.Name)
		switch {
		case notFound(err):
		case err != nil:
			return fmt.Errorf("check Secret %s: %w", s.Name, err)
		default:
			var spec struct {
				Data map[string]json.RawMessage `json:"data"`
			}
			_ = json.Unmarshal(obj.Spec, &spec)
			have = map[string]bool{}
			for k := range spec.Data {
				have[k] = true
			}
		}
		var missing []integrations.SecretKey
		for _, k := range s.Keys {
			if !have[k.Name] {
				missing = append(missing, k)
			}
		}
		if len(missing) == 0 {
			continue
		}
		what := "does not exist yet"
		if have != nil {
			names := make([]string, len(missing))
			for i, k := range missing {
				names[i] = k.Name
			}
			sort.Strings(names)
			what = "lacks " + strings.Join(names, ", ")
		}
		var b strings.Builder
		fmt.Fprintf(&b, "\nSecret %s %s; %s reads it. Create it with:\n\n  vigil apply -f - <<'EOF'\n  kind: Secret\n  name: %s\n  spec:\n    data:\n", s.Name, what, in.Name, s.Name)
		for _, k := range s.Keys {
			fmt.Fprintf(&b, "      %s: ...   # %s\n", k.Name, k.Description)
		}
		b.WriteString("  EOF\n")
		if _, err := fmt.Fprint(e.stderr, b.String()); err != nil {
			return err
		}
	}
	return nil
}

// notFound reports whether err is the API's 404.
func notFound(err error) bool {
	var apiErr *client.APIError
	return errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound
}
