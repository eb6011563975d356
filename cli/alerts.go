package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigilhq/vigil/client"
)

// maxEventFile bounds the event of `alerts test`; the API refuses bodies
// over 1 MiB.
const maxEventFile = 1 << 20

// Widths of the cut columns of the alert and dead-letter tables.
const (
	summaryWidth = 60
	errorWidth   = 60
)

func (e *env) alertsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "alerts",
		Aliases: []string{"alert"},
		Short:   "List, show, dismiss and test alerts",
		Args:    noSubcommand,
		RunE:    showHelp,
	}
	cmd.AddCommand(e.alertsListCmd(), e.alertsShowCmd(), e.alertsDismissCmd(), e.alertsTestCmd())
	return cmd
}

func (e *env) alertsListCmd() *cobra.Command {
	var (
		cf     clientFlags
		filter client.AlertFilter
	)
	state := newFoldEnum("", client.AlertStates...)
	output := newEnum("table", "table", "json", "yaml")
	cmd := &cobra.Command{
		Use:   "list [--config NAME] [--state S] [--limit N]",
		Short: "List alerts, newest first",
		Long: `List alerts, newest first. -o table prints ID CONFIG STATE LEVEL OBJECT RAISED
THROTTLED EVENTS SUMMARY (THROTTLED counts the matches since the actions last
ran; EVENTS counts the events the alert keeps, at most 20); -o json and
-o yaml print {"items": [alert, ...]}.`,
		Example: "  vigil alerts list --config web-down --state on",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if filter.Limit < 0 {
				return usagef("--limit: must not be negative")
			}
			filter.State = state.value
			cl, err := e.client(&cf)
			if err != nil {
				return err
			}
			items, err := cl.ListAlerts(cmd.Context(), filter)
			if err != nil {
				return err
			}
			if output.value != "table" {
				if items == nil {
					items = []client.Alert{}
				}
				return e.printData(map[string]any{"items": items}, output.value)
			}
			t := newTable(e.stdout, "ID", "CONFIG", "STATE", "LEVEL", "OBJECT", "RAISED", "THROTTLED", "EVENTS", "SUMMARY")
			for _, a := range items {
				t.row(a.ID, a.Config, a.State, dash(a.Level), objectCell(a.ObjType, a.ObjName), fmtTime(a.Raised),
					strconv.Itoa(a.ThrottleCount), strconv.Itoa(len(a.Events)), dash(trimCell(a.Summary, summaryWidth)))
			}
			return t.flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&filter.Config, "config", "", "only alerts of this AlertConfig")
	f.Var(state, "state", "only alerts in this state (any case): "+strings.Join(client.AlertStates, ", "))
	f.IntVar(&filter.Limit, "limit", 0, "at most this many (server default 100, at most 10000)")
	f.VarP(output, "output", "o", "output format: table, json or yaml")
	addClientFlags(cmd, &cf)
	return cmd
}

func (e *env) alertsShowCmd() *cobra.Command {
	var cf clientFlags
	output := newEnum("table", "table", "json", "yaml")
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one alert, its events and its actions",
		Long: `Show one alert. -o table prints its fields, its events (TIME EVENT_ID
OBJECT), its actions (TARGET STATUS TRIES AT EXECUTION ERROR) and the output
of its ControlScript's last run; -o json and -o yaml print the whole alert.`,
		Example: "  vigil alerts show alert-0190a1b2-... -o yaml",
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := e.client(&cf)
			if err != nil {
				return err
			}
			a, err := cl.GetAlert(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if output.value != "table" {
				return e.printData(a, output.value)
			}
			return e.printAlert(a)
		},
	}
	cmd.Flags().VarP(output, "output", "o", "output format: table, json or yaml")
	addClientFlags(cmd, &cf)
	return cmd
}

// printAlert prints the human view of show.
func (e *env) printAlert(a *client.Alert) error {
	var p pairs
	p.add("ID", a.ID)
	p.add("Config", a.Config)
	p.add("Key", dash(a.Key))
	p.add("State", a.State)
	p.add("Level", dash(a.Level))
	obj := objectCell(a.ObjType, a.ObjName)
	if a.ObjUUID != "" {
		obj += " (" + a.ObjUUID + ")"
	}
	p.add("Object", obj)
	p.add("Raised", fmtTime(a.Raised))
	p.add("Acted", fmtTime(a.Acted))
	p.add("Throttled", strconv.Itoa(a.ThrottleCount))
	p.add("Summary", dash(a.Summary))
	var b bytes.Buffer
	p.writeTo(&b)

	fmt.Fprintf(&b, "\nEvents (%d):\n", len(a.Events))
	if len(a.Events) > 0 {
		t := newTable(&b, "  TIME", "EVENT_ID", "OBJECT")
		for _, ev := range a.Events {
			ts := "-"
			if ev.ReportTimestamp != 0 {
				ts = fmtTime(time.Unix(ev.ReportTimestamp, 0))
			}
			t.row("  "+ts, dash(ev.EventID), objectCell(ev.ObjType, ev.ObjName))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}

	fmt.Fprintf(&b, "\nActions (%d):\n", len(a.Actions))
	if len(a.Actions) > 0 {
		t := newTable(&b, "  TARGET", "STATUS", "TRIES", "AT", "EXECUTION", "ERROR")
		for _, o := range a.Actions {
			target := dash(o.Target)
			if o.Resolve {
				target += " (resolve)"
			}
			t.row("  "+target, o.Status, strconv.Itoa(o.Tries), fmtTime(o.At), dash(o.Execution), dash(o.Error))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}

	if a.ActionScriptOutput != "" {
		b.WriteString("\nAction script output:\n")
		b.WriteString(a.ActionScriptOutput)
		if !strings.HasSuffix(a.ActionScriptOutput, "\n") {
			b.WriteByte('\n')
		}
	}
	_, err := e.stdout.Write(b.Bytes())
	return err
}

func (e *env) alertsDismissCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "dismiss ID...",
		Short: "Dismiss alerts",
		Long: `Dismiss alerts: their actions stop, and the next match raises a new alert.
Prints "alert ID dismissed" for each; an alert that cannot be dismissed is
reported and the others are still dismissed.`,
		Example: "  vigil alerts dismiss alert-0190a1b2-... alert-0190a1c3-...",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("want at least one alert ID")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := e.client(&cf)
			if err != nil {
				return err
			}
			return eachArg(args, func(id string) error {
				if _, err := cl.DismissAlert(cmd.Context(), id); err != nil {
					return err
				}
				_, err := fmt.Fprintf(e.stdout, "alert %s dismissed\n", id)
				return err
			})
		},
	}
	addClientFlags(cmd, &cf)
	return cmd
}

// eachArg calls fn for each of args. It goes on after an error the API
// answered (an unknown id, say) and returns them all joined, one per line;
// any other error (the server cannot be reached, stdout fails) stops it.
func eachArg[T any](args []T, fn func(T) error) error {
	var errs []error
	for _, a := range args {
		err := fn(a)
		if err == nil {
			continue
		}
		errs = append(errs, err)
		var ae *client.APIError
		if !errors.As(err, &ae) {
			break
		}
	}
	return errors.Join(errs...)
}

func (e *env) alertsTestCmd() *cobra.Command {
	var (
		cf   clientFlags
		file string
	)
	output := newEnum("table", "table", "json", "yaml")
	cmd := &cobra.Command{
		Use:   "test -f FILE|-",
		Short: "Show what each AlertConfig would do with an event",
		Long: `Show what each AlertConfig would do with an event, from the current state of
its alerts, without doing it: nothing is stored and no action runs.

The event is a JSON file (not YAML), or stdin with -f -: a CloudEvent, or a
bare event record as 'vigil events publish' sends, the same as
POST /api/v1/events takes. -o table prints CONFIG MATCHED OUTCOME/REASON KEY
ACTIONS: OUTCOME is what a matching event would do (raise, act, throttle,
resolve, collect, silenced by NAME, dropped), REASON why another did not
match. -o json and -o yaml print {"results": [...]} as the API answers.
Exits 0 whether or not anything matches.`,
		Example: `  vigil alerts test -f event.json
  echo '{"event_id": "SERVER_DOWN", "obj_type": "pool", "obj_name": "web"}' | vigil alerts test -f -`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usagef("no event: give -f FILE or -f -")
			}
			event, err := e.readEvent(file)
			if err != nil {
				return err
			}
			cl, err := e.client(&cf)
			if err != nil {
				return err
			}
			results, err := cl.TestAlerts(cmd.Context(), event)
			if err != nil {
				return err
			}
			if output.value != "table" {
				if results == nil {
					results = []client.TestResult{}
				}
				return e.printData(map[string]any{"results": results}, output.value)
			}
			if len(results) == 0 {
				_, err := fmt.Fprintln(e.stderr, "no AlertConfig matches the event")
				return err
			}
			t := newTable(e.stdout, "CONFIG", "MATCHED", "OUTCOME/REASON", "KEY", "ACTIONS")
			for _, r := range results {
				why := r.Outcome
				if !r.Matched {
					why = r.Reason
				}
				targets := make([]string, 0, len(r.Actions))
				for _, o := range r.Actions {
					targets = append(targets, o.Target)
				}
				t.row(r.Config, yesNo(r.Matched), dash(why), dash(r.Key), dash(strings.Join(targets, ",")))
			}
			return t.flush()
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "the event: a JSON file, or - for stdin")
	cmd.Flags().VarP(output, "output", "o", "output format: table, json or yaml")
	addClientFlags(cmd, &cf)
	return cmd
}

// readEvent reads the -f file of `alerts test` (stdin for -), which must
// hold one JSON object, and returns it compacted.
func (e *env) readEvent(path string) (json.RawMessage, error) {
	data, name, err := e.readInput("-f", path, maxEventFile)
	if err != nil {
		return nil, err
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%s is empty: want an event, a JSON object", name)
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		hint := ""
		if trimmed[0] != '{' && trimmed[0] != '[' {
			hint = " (the event must be JSON; YAML is not read)"
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := position(data, se.Offset)
			return nil, fmt.Errorf("%s:%d:%d: invalid JSON: %w%s", name, line, col, err, hint)
		}
		return nil, fmt.Errorf("%s: invalid JSON: %w%s", name, err, hint)
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, fmt.Errorf("%s: the event must be a JSON object: a CloudEvent or a record such as "+
			`{"event_id": "SERVER_DOWN", "obj_type": "pool", "obj_name": "web"}`, name)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return b.Bytes(), nil
}

// position turns the byte offset of a JSON syntax error (the count of bytes
// read when it was found) into a 1-based line and column.
func position(data []byte, offset int64) (line, col int) {
	end := min(max(int(offset)-1, 0), len(data))
	before := data[:end]
	line = 1 + bytes.Count(before, []byte("\n"))
	col = 1 + len(before) - (bytes.LastIndexByte(before, '\n') + 1)
	return line, col
}

func (e *env) deadLettersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "deadletters",
		Aliases: []string{"deadletter"},
		Short:   "List and replay actions that could not be delivered",
		Args:    noSubcommand,
		RunE:    showHelp,
	}
	cmd.AddCommand(e.deadLettersListCmd(), e.deadLettersReplayCmd())
	return cmd
}

// listDeadLetters returns the page from cursor, or with all every page
// from cursor on.
func listDeadLetters(cmd *cobra.Command, cl *client.Client, cursor string, limit int, all bool) (client.DeadLetterPage, error) {
	page, err := cl.ListDeadLetters(cmd.Context(), cursor, limit)
	if err != nil || !all {
		return page, err
	}
	items := page.Items
	for page.NextCursor != "" {
		next := page.NextCursor
		if next == cursor {
			return client.DeadLetterPage{}, fmt.Errorf("list dead letters: the server gave cursor %s twice", next)
		}
		cursor = next
		if page, err = cl.ListDeadLetters(cmd.Context(), cursor, limit); err != nil {
			return client.DeadLetterPage{}, err
		}
		items = append(items, page.Items...)
	}
	return client.DeadLetterPage{Items: items}, nil
}

func (e *env) deadLettersListCmd() *cobra.Command {
	var (
		cf     clientFlags
		cursor string
		limit  int
		all    bool
	)
	output := newEnum("table", "table", "json", "yaml")
	cmd := &cobra.Command{
		Use:   "list [--limit N] [--cursor C] [--all]",
		Short: "List the actions that could not be delivered, oldest first",
		Long: `List dead letters, the actions that could not be delivered, oldest first.
-o table prints SEQ KIND TARGET CONFIG ALERT TRIES ERROR AT, and "next
cursor: ..." on stderr when there are more; --all follows the cursors to the
end (--limit is then the size of each page). -o json and -o yaml print
{"items": [...], "next_cursor": "..."}.`,
		Example: "  vigil deadletters list --all\n  vigil deadletters list --limit 20 -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return usagef("--limit: must not be negative")
			}
			cl, err := e.client(&cf)
			if err != nil {
				return err
			}
			page, err := listDeadLetters(cmd, cl, cursor, limit, all)
			if err != nil {
				return err
			}
			if output.value != "table" {
				if page.Items == nil {
					page.Items = []client.DeadLetter{}
				}
				return e.printData(page, output.value)
			}
			t := newTable(e.stdout, "SEQ", "KIND", "TARGET", "CONFIG", "ALERT", "TRIES", "ERROR", "AT")
			for _, dl := range page.Items {
				q := dl.Request
				t.row(strconv.FormatUint(dl.Seq, 10), q.Kind, q.Target(), dash(q.Config), dash(q.Notice.ID),
					strconv.Itoa(dl.Tries), dash(trimCell(dl.Error, errorWidth)), fmtTime(dl.At))
			}
			if err := t.flush(); err != nil {
				return err
			}
			if page.NextCursor != "" {
				_, err = fmt.Fprintf(e.stderr, "next cursor: %s\n", page.NextCursor)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&limit, "limit", 0, "at most this many per page (server default 100, at most 10000)")
	f.StringVar(&cursor, "cursor", "", "continue from an earlier page (its \"next cursor\")")
	f.BoolVar(&all, "all", false, "follow the cursors and list every dead letter")
	f.VarP(output, "output", "o", "output format: table, json or yaml")
	addClientFlags(cmd, &cf)
	return cmd
}

func (e *env) deadLettersReplayCmd() *cobra.Command {
	var (
		cf  clientFlags
		all bool
	)
	cmd := &cobra.Command{
		Use:   "replay SEQ... | replay --all",
		Short: "Queue dead letters' actions again",
		Long: `Queue dead letters' actions again, with the same idempotency key (a receiver
that saw the action already can tell) and their tries starting over; a
replayed dead letter leaves the list. Prints "dead letter SEQ replayed
(key KEY)" for each; one that cannot be replayed is reported and the others
are still replayed. --all replays every dead letter listed now.`,
		Example: "  vigil deadletters replay 12 13\n  vigil deadletters replay --all",
		Args: func(_ *cobra.Command, args []string) error {
			switch {
			case all && len(args) > 0:
				return usagef("give SEQ... or --all, not both")
			case !all && len(args) == 0:
				return usagef("want at least one SEQ, or --all")
			}
			for _, a := range args {
				if n, err := strconv.ParseUint(a, 10, 64); err != nil || n == 0 {
					return usagef("SEQ must be a dead letter's sequence number (see 'vigil deadletters list'), got %q", a)
				}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := e.client(&cf)
			if err != nil {
				return err
			}
			var seqs []uint64
			for _, a := range args {
				n, _ := strconv.ParseUint(a, 10, 64) // checked by Args
				seqs = append(seqs, n)
			}
			if all {
				page, err := listDeadLetters(cmd, cl, "", 0, true)
				if err != nil {
					return err
				}
				if len(page.Items) == 0 {
					_, err := fmt.Fprintln(e.stderr, "no dead letters")
					return err
				}
				for _, dl := range page.Items {
					seqs = append(seqs, dl.Seq)
				}
			}
			return eachArg(seqs, func(seq uint64) error {
				dl, err := cl.ReplayDeadLetter(cmd.Context(), seq)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(e.stdout, "dead letter %d replayed (key %s)\n", seq, dl.Request.Key)
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "replay every dead letter")
	addClientFlags(cmd, &cf)
	return cmd
}
