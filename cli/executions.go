package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigilhq/vigil/client"
)

// maxAlertFile bounds the --alert file; the API refuses bodies over 1 MiB.
const maxAlertFile = 1 << 20

// executionStatuses are the statuses --status takes.
var executionStatuses = []string{
	client.StatusQueued, client.StatusRunning, client.StatusSucceeded, client.StatusFailed, client.StatusTimeout,
	client.StatusOOM, client.StatusKilled, client.StatusCancelled, client.StatusRejected,
}

// Exit codes of `vigil run --wait` for executions that did not succeed or
// fail on their own; a failed script exits with its own code.
const (
	exitTimeout     = 124 // like timeout(1)
	exitRejected    = 126 // like a command that cannot be executed
	exitCancelled   = 130 // 128+SIGINT, like an interrupted command
	exitOOM         = 137 // 128+SIGKILL, as a shell shows an OOM-killed process
	exitKilled      = 137 // 128+SIGKILL, for a kill by an unknown signal
	exitInterrupted = 130 // vigil itself was interrupted while waiting
)

const runLong = `Run a ControlScript on the server and print the execution's id.

With --wait, vigil waits for the execution to end, prints the script's
stdout to stdout and its stderr to stderr, as they were captured, and exits
with a code that tells how the script ended:

  0        succeeded
  1-255    failed: the script's own exit code (1 when it has none)
  124      timeout: it ran past its timeout or CPU time
  126      rejected: the runner could not start it (a limit it cannot
           enforce, a missing Secret...)
  128+n    killed by signal n (137 for SIGKILL, 143 for SIGTERM)
  130      cancelled ('vigil executions cancel'), or vigil was interrupted
           while waiting (the execution goes on)
  137      oom: killed for using more memory than limits.memory

For every status but succeeded and failed, a line
"vigil: execution <id> <status>: <reason>" on stderr says why. -o json
prints the execution record instead of the output (the final one with
--wait), and exits with the same codes. Errors of vigil itself exit with 1,
usage errors with 2.

--alert gives the script an alert, a JSON object read from a file or, with
-, from stdin; the script gets it as sys.argv[1].`

func (e *env) runCmd() *cobra.Command {
	var (
		cf    clientFlags
		alert string
		wait  bool
	)
	output := newEnum("text", "text", "json")
	cmd := &cobra.Command{
		Use:   "run NAME [--alert FILE|-] [--wait]",
		Short: "Run a ControlScript",
		Long:  runLong,
		Example: `  vigil run backup
  vigil run failover --alert alert.json --wait
  echo '{"event_id": "SERVER_DOWN"}' | vigil run failover --alert - --wait -o json`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var alertJSON json.RawMessage
			if alert != "" {
				a, err := e.readAlert(alert)
				if err != nil {
					return err
				}
				alertJSON = a
			}
			cl, err := e.client(&cf)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			ex, err := cl.RunScript(ctx, args[0], alertJSON, false)
			if err != nil {
				return err
			}
			if !wait {
				if output.value == "json" {
					return e.printData(ex, "json")
				}
				_, err := fmt.Fprintln(e.stdout, ex.ID)
				return err
			}
			if !ex.Final() {
				ex, err = e.waitExecution(ctx, cl, ex.ID)
				if err != nil {
					return err
				}
			}
			if output.value == "json" {
				if err := e.printData(ex, "json"); err != nil {
					return err
				}
				if code := exitCode(ex); code != 0 {
					return &exitError{code: code}
				}
				return nil
			}
			return e.printOutcome(ex)
		},
	}
	f := cmd.Flags()
	f.StringVar(&alert, "alert", "", "a JSON object to give the script as its alert: a file, or - for stdin")
	f.BoolVar(&wait, "wait", false, "wait for the execution to end, print its output and exit with its code")
	f.VarP(output, "output", "o", "output format: text or json (the execution record)")
	addClientFlags(cmd, &cf)
	return cmd
}

// readAlert reads the --alert file (or stdin for -), which must hold a
// JSON object.
func (e *env) readAlert(path string) (json.RawMessage, error) {
	data, name, err := e.readInput("--alert", path, maxAlertFile)
	if err != nil {
		return nil, err
	}
	if !isJSONObject(string(data)) {
		return nil, usagef("--alert: %s must hold a JSON object, such as {\"event_id\": \"SERVER_DOWN\"}", name)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		return nil, usagef("--alert: %s: %v", name, err)
	}
	return b.Bytes(), nil
}

// readInput reads the file that flag names, or stdin for "-", refusing more
// than maxSize bytes. It returns the data and the name to give in errors
// ("stdin" or path).
func (e *env) readInput(flag, path string, maxSize int) ([]byte, string, error) {
	var (
		r    io.Reader
		name = path
	)
	if path == "-" {
		r, name = e.stdin, "stdin"
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, name, fmt.Errorf("%s: %w", flag, err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, int64(maxSize)+1))
	if err != nil {
		return nil, name, fmt.Errorf("%s: read %s: %w", flag, name, err)
	}
	if len(data) > maxSize {
		return nil, name, usagef("%s: %s is over %d MiB", flag, name, maxSize>>20)
	}
	return data, name, nil
}

// waitExecution waits for execution id to end by following its logs,
// reconnecting when the connection drops, and returns it final. An
// interrupt (ctx) ends the wait with exit code 130; the execution goes on.
func (e *env) waitExecution(ctx context.Context, cl *client.Client, id string) (*client.Execution, error) {
	backoff, maxWait := e.tailBackoff, 15*time.Second
	discard := func(string, []byte) error { return nil }
	for {
		_, err := cl.FollowExecutionLogs(ctx, id, discard)
		if err == nil {
			var ex *client.Execution
			ex, err = cl.GetExecution(ctx, id)
			if err == nil && ex.Final() {
				return ex, nil
			}
		}
		if ctx.Err() != nil {
			return nil, &exitError{code: exitInterrupted, err: fmt.Errorf(
				"interrupted; execution %s goes on ('vigil executions cancel %s' stops it)", id, id)}
		}
		var ae *client.APIError
		if errors.As(err, &ae) && ae.Status < 500 && ae.Status != 429 {
			return nil, err
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "vigil: waiting for %s: %v; retrying in %v\n", id, err, backoff)
		}
		select {
		case <-ctx.Done():
			continue // reported above, on the next turn
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxWait)
	}
}

// printOutcome prints a final execution's output verbatim and returns the
// exit code that tells how it ended (an *exitError, or nil for success).
func (e *env) printOutcome(ex *client.Execution) error {
	if _, err := io.WriteString(e.stdout, ex.Stdout); err != nil {
		return err
	}
	if _, err := io.WriteString(e.stderr, ex.Stderr); err != nil {
		return err
	}
	if ex.StdoutTruncated {
		fmt.Fprintf(e.stderr, "vigil: execution %s: stdout was cut at limits.output\n", ex.ID)
	}
	if ex.StderrTruncated {
		fmt.Fprintf(e.stderr, "vigil: execution %s: stderr was cut at limits.output\n", ex.ID)
	}
	code := exitCode(ex)
	if code == 0 {
		return nil
	}
	if ex.Status == client.StatusFailed && ex.ExitCode != nil && *ex.ExitCode != 0 {
		return &exitError{code: code} // the script's stderr says why
	}
	msg := fmt.Sprintf("execution %s %s", ex.ID, ex.Status)
	if ex.Reason != "" {
		msg += ": " + ex.Reason
	}
	return &exitError{code: code, err: errors.New(msg)}
}

// exitCode is the exit code of `vigil run --wait` for a final execution
// (the table in runLong).
func exitCode(ex *client.Execution) int {
	switch ex.Status {
	case client.StatusSucceeded:
		return 0
	case client.StatusFailed:
		if ex.ExitCode != nil && *ex.ExitCode >= 1 && *ex.ExitCode <= 255 {
			return *ex.ExitCode
		}
		return 1
	case client.StatusTimeout:
		return exitTimeout
	case client.StatusOOM:
		return exitOOM
	case client.StatusKilled:
		if n, ok := signalNumbers[ex.Signal]; ok {
			return 128 + n
		}
		return exitKilled
	case client.StatusCancelled:
		return exitCancelled
	case client.StatusRejected:
		return exitRejected
	}
	return 1
}

// signalNumbers are the Linux numbers of the signals a script may die of.
var signalNumbers = map[string]int{
	"SIGHUP": 1, "SIGINT": 2, "SIGQUIT": 3, "SIGILL": 4, "SIGTRAP": 5, "SIGABRT": 6, "SIGBUS": 7,
	"SIGFPE": 8, "SIGKILL": 9, "SIGUSR1": 10, "SIGSEGV": 11, "SIGUSR2": 12, "SIGPIPE": 13,
	"SIGALRM": 14, "SIGTERM": 15, "SIGXCPU": 24, "SIGXFSZ": 25, "SIGSYS": 31,
}

func (e *env) executionsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "executions",
		Aliases: []string{"execution"},
		Short:   "List, show, follow and cancel ControlScript executions",
		Args:    noSubcommand,
		RunE:    showHelp,
	}
	cmd.AddCommand(e.executionsListCmd(), e.executionsShowCmd(), e.executionsLogsCmd(), e.executionsCancelCmd())
	return cmd
}

func (e *env) executionsListCmd() *cobra.Command {
	var (
		cf     clientFlags
		script string
		limit  int
	)
	status := newEnum("", executionStatuses...)
	output := newEnum("table", "table", "json")
	cmd := &cobra.Command{
		Use:   "list [--script NAME] [--status S] [--limit N]",
		Short: "List executions, newest first",
		Long: `List executions, newest first. -o table prints ID SCRIPT STATUS TRIGGER
QUEUED DURATION EXIT; -o json prints {"items": [execution, ...]}.`,
		Example: "  vigil executions list --script backup --status failed",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return usagef("--limit: must not be negative")
			}
			cl, err := e.client(&cf)
			if err != nil {
				return err
			}
			items, err := cl.ListExecutions(cmd.Context(), script, status.value, limit)
			if err != nil {
				return err
			}
			if output.value == "json" {
				if items == nil {
					items = []*client.Execution{}
				}
				return e.printData(map[string]any{"items": items}, "json")
			}
			now := time.Now()
			t := newTable(e.stdout, "ID", "SCRIPT", "STATUS", "TRIGGER", "QUEUED", "DURATION", "EXIT")
			for _, ex := range items {
				t.row(ex.ID, ex.Script, ex.Status, dash(ex.Trigger), fmtTime(ex.Queued), fmtDuration(ex.Duration(now)), exitCell(ex))
			}
			return t.flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&script, "script", "", "only executions of this ControlScript")
	f.Var(status, "status", "only executions with this status: "+strings.Join(executionStatuses, ", "))
	f.IntVar(&limit, "limit", 0, "at most this many (server default 100, at most 1000)")
	f.VarP(output, "output", "o", "output format: table or json")
	addClientFlags(cmd, &cf)
	return cmd
}

// exitCell is the EXIT column: the exit code, else the signal.
func exitCell(ex *client.Execution) string {
	switch {
	case ex.ExitCode != nil:
		return strconv.Itoa(*ex.ExitCode)
	case ex.Signal != "":
		return ex.Signal
	}
	return "-"
}

// fmtDuration rounds d for people: 350ms, 2.5s, 1m5s; "-" for none.
func fmtDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func (e *env) executionsShowCmd() *cobra.Command {
	var cf clientFlags
	output := newEnum("table", "table", "json", "yaml")
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one execution",
		Long: `Show one execution. -o table prints a summary (status, times, exit code,
resources, and the mechanism that enforced each limit); -o json and -o yaml
print the whole record, output included.`,
		Example: "  vigil executions show exec-0190a1b2-... -o yaml",
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := e.client(&cf)
			if err != nil {
				return err
			}
			ex, err := cl.GetExecution(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if output.value != "table" {
				return e.printData(ex, output.value)
			}
			return e.printExecution(ex, time.Now())
		},
	}
	cmd.Flags().VarP(output, "output", "o", "output format: table, json or yaml")
	addClientFlags(cmd, &cf)
	return cmd
}

// printExecution prints the key: value summary of show.
func (e *env) printExecution(ex *client.Execution, now time.Time) error {
	var lines pairs
	kv := lines.add
	kv("ID", ex.ID)
	script := ex.Script
	if ex.ScriptRevision != 0 {
		script += fmt.Sprintf(" (revision %d)", ex.ScriptRevision)
	}
	kv("Script", script)
	kv("Status", ex.Status)
	if ex.Reason != "" {
		kv("Reason", ex.Reason)
	}
	trigger := dash(ex.Trigger)
	if ex.TriggeredBy != "" {
		trigger += " by " + ex.TriggeredBy
	}
	kv("Trigger", trigger)
	attempt := strconv.Itoa(ex.Attempt)
	if ex.RetryOf != "" {
		attempt += " (retry of " + ex.RetryOf + ")"
	}
	kv("Attempt", attempt)
	if ex.Runner != "" {
		kv("Runner", ex.Runner)
	}
	kv("Queued", fmtTime(ex.Queued))
	kv("Started", fmtTimePtr(ex.Started))
	if ex.FirstLine != nil {
		line := fmtTimePtr(ex.FirstLine)
		if ex.Started != nil {
			line += fmt.Sprintf(" (%s after the start)", fmtDuration(ex.FirstLine.Sub(*ex.Started)))
		}
		kv("First line", line)
	}
	kv("Finished", fmtTimePtr(ex.Finished))
	kv("Duration", fmtDuration(ex.Duration(now)))
	if ex.ExitCode != nil {
		kv("Exit code", strconv.Itoa(*ex.ExitCode))
	}
	if ex.Signal != "" {
		kv("Signal", ex.Signal)
	}
	kv("CPU time", fmtDuration(time.Duration(ex.CPUTimeMS)*time.Millisecond))
	peak := "-"
	if ex.PeakMemory > 0 {
		peak = formatSize(ex.PeakMemory)
	}
	kv("Peak memory", peak)
	kv("Killed descendants", strconv.Itoa(ex.KilledDescendants))
	kv("Warm", yesNo(ex.Warm))
	if ex.Cgroup != "" {
		kv("Cgroup", ex.Cgroup)
	}
	kv("Stdout", outputSize(ex.Stdout, ex.StdoutTruncated))
	kv("Stderr", outputSize(ex.Stderr, ex.StderrTruncated))
	if len(ex.Alert) > 0 {
		var b bytes.Buffer
		if json.Compact(&b, ex.Alert) != nil {
			b.Reset()
			b.Write(ex.Alert)
		}
		kv("Alert", b.String())
	}
	if len(ex.Enforcement) == 0 {
		kv("Enforcement", "-")
	} else {
		kv("Enforcement", "")
		limits := make([]string, 0, len(ex.Enforcement))
		for l := range ex.Enforcement {
			limits = append(limits, l)
		}
		sort.Strings(limits)
		for _, l := range limits {
			kv("  "+l, ex.Enforcement[l])
		}
	}
	var b bytes.Buffer
	lines.writeTo(&b)
	_, err := e.stdout.Write(b.Bytes())
	return err
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func outputSize(s string, truncated bool) string {
	out := fmt.Sprintf("%d bytes", len(s))
	if truncated {
		out += " (cut at limits.output)"
	}
	return out
}

func (e *env) executionsLogsCmd() *cobra.Command {
	var (
		cf     clientFlags
		follow bool
	)
	cmd := &cobra.Command{
		Use:   "logs ID [-f]",
		Short: "Print an execution's output",
		Long: `Print an execution's stdout to stdout and its stderr to stderr, as they were
captured. With -f, follow the output until the execution ends; a carriage
return arrives as a line break then.`,
		Example: "  vigil executions logs exec-0190a1b2-... -f",
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := e.client(&cf)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if !follow {
				logs, err := cl.ExecutionLogs(ctx, args[0])
				if err != nil {
					return err
				}
				if _, err := io.WriteString(e.stdout, logs.Stdout); err != nil {
					return err
				}
				if _, err := io.WriteString(e.stderr, logs.Stderr); err != nil {
					return err
				}
				if logs.StdoutTruncated {
					fmt.Fprintf(e.stderr, "vigil: execution %s: stdout was cut at limits.output\n", args[0])
				}
				if logs.StderrTruncated {
					fmt.Fprintf(e.stderr, "vigil: execution %s: stderr was cut at limits.output\n", args[0])
				}
				return nil
			}
			_, err = cl.FollowExecutionLogs(ctx, args[0], func(stream string, data []byte) error {
				w := e.stdout
				if stream == "stderr" {
					w = e.stderr
				}
				if _, err := w.Write(data); err != nil {
					return &stdoutError{err}
				}
				return nil
			})
			var se *stdoutError
			switch {
			case ctx.Err() != nil:
				return nil //nolint:nilerr // Ctrl-C ends a follow normally
			case errors.As(err, &se):
				return se.err
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow the output until the execution ends")
	addClientFlags(cmd, &cf)
	return cmd
}

func (e *env) executionsCancelCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a queued or running execution",
		Long: `Cancel a queued or running execution, wait for it to end, and print how it
ended. An execution that already ended is an error (conflict).`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := e.client(&cf)
			if err != nil {
				return err
			}
			ex, err := cl.CancelExecution(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			msg := fmt.Sprintf("execution %s %s", ex.ID, ex.Status)
			if ex.Reason != "" {
				msg += ": " + ex.Reason
			}
			_, err = fmt.Fprintln(e.stdout, cellReplacer.Replace(msg))
			return err
		},
	}
	addClientFlags(cmd, &cf)
	return cmd
}
