package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigilhq/vigil/client"
)

func (e *env) tokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke API tokens",
		Args:  noSubcommand,
		RunE:  showHelp,
	}
	cmd.AddCommand(e.tokenCreateCmd(), e.tokenListCmd(), e.tokenRevokeCmd(), e.tokenResetAdminCmd())
	return cmd
}

func (e *env) tokenCreateCmd() *cobra.Command {
	var (
		cf  clientFlags
		req client.TokenRequest
	)
	role := newEnum("", "admin", "operator", "viewer", "script")
	cmd := &cobra.Command{
		Use:   "create --role admin|operator|viewer|script [--name N] [--ttl 720h]",
		Short: "Create an API token (admins only)",
		Long: `Create an API token and print it, alone, on stdout; the details go to stderr.
The token is shown only this once.

Roles: viewer reads objects (Secrets redacted) and events; script may do what
operator may except touch Secrets and Tokens; operator writes objects and
publishes events; admin may do everything, including managing tokens.`,
		Example: `  export VIGIL_TOKEN=$(vigil token create --role operator --name ci)`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if role.value == "" {
				return usagef("--role is required: admin, operator, viewer or script")
			}
			req.Role = role.value
			if req.TTL != "" {
				if _, err := time.ParseDuration(req.TTL); err != nil {
					return usagef("--ttl: want a duration such as 720h: %w", err)
				}
			}
			cl, err := e.client(&cf)
			if err != nil {
				return err
			}
			tok, err := cl.CreateToken(cmd.Context(), req)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintln(e.stdout, tok.Token); err != nil {
				return err
			}
			expires := "never expires"
			if tok.Expires != nil && !tok.Expires.IsZero() {
				expires = "expires " + fmtTime(*tok.Expires)
			}
			_, err = fmt.Fprintf(e.stderr, "created token %q: role %s, %s; it is shown only this once\n", tok.Name, tok.Role, expires)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Name, "name", "", "the token's name (default: generated)")
	f.Var(role, "role", "the token's role: admin, operator, viewer or script (required)")
	f.StringVar(&req.TTL, "ttl", "720h", "how long the token works")
	f.StringVar(&req.Description, "description", "", "what the token is for")
	addClientFlags(cmd, &cf)
	return cmd
}

func (e *env) tokenListCmd() *cobra.Command {
	var cf clientFlags
	output := newEnum("table", "table", "json")
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List API tokens, without their secrets",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := e.client(&cf)
			if err != nil {
				return err
			}
			toks, err := cl.ListTokens(cmd.Context())
			if err != nil {
				return err
			}
			if output.value == "json" {
				if toks == nil {
					toks = []client.TokenInfo{}
				}
				return e.printData(map[string]any{"items": toks}, "json")
			}
			t := newTable(e.stdout, "NAME", "ROLE", "EXPIRES", "CREATED", "CREATED-BY", "DESCRIPTION")
			for _, tk := range toks {
				t.row(tk.Name, tk.Role, fmtTimePtr(tk.Expires), fmtTimePtr(tk.Created), dash(tk.CreatedBy), dash(tk.Description))
			}
			return t.flush()
		},
	}
	cmd.Flags().VarP(output, "output", "o", "output format: table or json")
	addClientFlags(cmd, &cf)
	return cmd
}

func (e *env) tokenRevokeCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke an API token (admins only)",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := e.client(&cf)
			if err != nil {
				return err
			}
			if err := cl.RevokeToken(cmd.Context(), args[0]); err != nil {
				return err
			}
			_, err = fmt.Fprintf(e.stdout, "token %q revoked\n", args[0])
			return err
		},
	}
	addClientFlags(cmd, &cf)
	return cmd
}

func (e *env) tokenResetAdminCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "reset-admin [--data-dir DIR]",
		Short: "Replace the admin token, offline",
		Long: `Replace the admin token in the data directory, offline, while 'vigil serve'
is stopped. The new token is written to <data-dir>/admin.token (mode 0600).
--data-dir defaults to $VIGIL_DATA_DIR, then ./vigil-data.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dataDir == "" {
				dataDir = e.dataDir()
			}
			return e.resetAdmin(cmd.Context(), dataDir, e.stdout)
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "the server's data directory (default $VIGIL_DATA_DIR or ./vigil-data)")
	return cmd
}
