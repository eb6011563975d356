// Package cli is vigil's command line: `vigil serve` runs the server, and the
// client commands (apply, diff, get, delete, events, run, executions, alerts,
// deadletters, token) talk to its API.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigilhq/vigil/app"
)

// version is set at build time with
// -ldflags "-X github.com/vigilhq/vigil/cli.version=v1.2.3"; when empty, the
// main module's version from the build info is used.
var version string

// Main runs the vigil command line with args (without the program name) and
// returns the process's exit code: 0 on success, 2 for usage errors, 1 for
// other errors (and the codes that diff, validate and run --wait document).
// ctx cancels the command; main builds it from SIGINT and SIGTERM.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{
		stdin:       stdin,
		stdout:      stdout,
		stderr:      stderr,
		getenv:      os.Getenv,
		run:         app.Run,
		resetAdmin:  app.ResetAdminToken,
		procs:       runtime.GOMAXPROCS,
		tailBackoff: 500 * time.Millisecond,
	}
	return e.main(ctx, args)
}

// env is what the commands of one Main call share.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	run            func(context.Context, app.Options) error
	resetAdmin     func(ctx context.Context, dataDir string, stdout io.Writer) error
	procs          func(n int) int // runtime.GOMAXPROCS; nil leaves it alone
	tailBackoff    time.Duration   // first wait before `events tail` reconnects
}

func (e *env) main(ctx context.Context, args []string) int {
	root := e.rootCmd()
	root.SetArgs(args)
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	code := 1
	var ue *usageError
	var xe *exitError
	switch {
	case errors.As(err, &xe):
		code = xe.code
		err = xe.err
	case errors.As(err, &ue):
		code = 2
		path := root.Name()
		if cmd != nil {
			path = cmd.CommandPath()
		}
		err = fmt.Errorf("%w (see '%s --help')", err, path)
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		err = fmt.Errorf("%w; is 'vigil serve' running there?", err)
	}
	if err != nil {
		for line := range strings.SplitSeq(strings.TrimRight(err.Error(), "\n"), "\n") {
			fmt.Fprintf(e.stderr, "vigil: %s\n", line)
		}
	}
	return code
}

// usageError is a mistake in the command line; it exits with 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// exitError exits with code, printing err when it is not nil.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit code %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

const rootLong = `vigil is an event-driven automation platform: events from proxies, health
monitors, webhooks and schedules go through rules to ControlScripts, webhooks
and other actions.

'vigil serve' runs the server. The other commands are clients of its API.`

func (e *env) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "vigil",
		Short:         "Event-driven automation for application delivery",
		Long:          rootLong + "\n\n" + clientHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          noSubcommand,
		RunE:          showHelp,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.AddCommand(
		e.serveCmd(),
		e.applyCmd(),
		e.diffCmd(),
		e.validateCmd(),
		e.getCmd(),
		e.deleteCmd(),
		e.eventsCmd(),
		e.runCmd(),
		e.executionsCmd(),
		e.alertsCmd(),
		e.integrationsCmd(),
		e.deadLettersCmd(),
		e.tokenCmd(),
		e.versionCmd(),
	)
	return root
}

// showHelp is the RunE of commands that only group others.
func showHelp(cmd *cobra.Command, _ []string) error { return cmd.Help() }

// noSubcommand refuses arguments to a command that only groups others.
func noSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	return &usageError{errors.New(msg)}
}

// exactArgs wants n arguments, named in the error.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return usagef("want %d argument(s), %s; got %d", len(names), strings.Join(names, " "), len(args))
		}
		return nil
	}
}

func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	return nil
}

func versionString() string {
	v := version
	if v == "" {
		v = "devel"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	return v
}

func (e *env) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print vigil's version",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(e.stdout, "vigil %s (%s)\n", versionString(), runtime.Version())
			return err
		},
	}
}
