package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/vigilhq/vigil/client"
)

func (e *env) eventsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Publish, list and follow events",
		Args:  noSubcommand,
		RunE:  showHelp,
	}
	cmd.AddCommand(e.eventsPublishCmd(), e.eventsListCmd(), e.eventsTailCmd(), e.eventsRejectedCmd())
	return cmd
}

func (e *env) eventsPublishCmd() *cobra.Command {
	var (
		cf                        clientFlags
		objType, objName, details string
		id, source                string
	)
	cmd := &cobra.Command{
		Use:   "publish EVENT_ID --obj-type T --obj-name N",
		Short: "Publish an event",
		Long: `Publish an event and print its id and stream sequence number. Without --id
and --source the server fills in id, source, time and module; with either,
the event is sent as a CloudEvent carrying them. Publishing the same --id
twice stores it once.`,
		Example: `  vigil events publish SERVER_DOWN --obj-type pool --obj-name web \
    --details '{"se_hm_pool_details": {"pool": "web"}}'`,
		Args: exactArgs("EVENT_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if objType == "" || objName == "" {
				return usagef("--obj-type and --obj-name are required")
			}
			record := map[string]any{"event_id": args[0], "obj_type": objType, "obj_name": objName}
			if details != "" {
				if !isJSONObject(details) {
					return usagef("--details: must be a JSON object, such as '{\"key\": \"value\"}'")
				}
				record["event_details"] = json.RawMessage(details)
			}
			var body any = record
			if id != "" || source != "" {
				if id == "" {
					u, err := uuid.NewV7()
					if err != nil {
						return fmt.Errorf("event id: %w", err)
					}
					id = u.String()
				}
				if source == "" {
					source = "vigil-cli"
				}
				body = map[string]any{
					"specversion":     "1.0",
					"id":              id,
					"source":          source,
					"type":            args[0],
					"subject":         objType + "/" + objName,
					"time":            time.Now().UTC().Format(time.RFC3339Nano),
					"datacontenttype": "application/json",
					"data":            record,
				}
			}
			data, err := json.Marshal(body)
			if err != nil {
				return fmt.Errorf("encode event: %w", err)
			}
			cl, err := e.client(&cf)
			if err != nil {
				return err
			}
			res, err := cl.PublishEvent(cmd.Context(), data)
			if err != nil {
				return err
			}
			dup := ""
			if res.Duplicate {
				dup = " duplicate=true"
			}
			_, err = fmt.Fprintf(e.stdout, "id=%s seq=%d%s\n", res.ID, res.Seq, dup)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&objType, "obj-type", "", "type of the object the event is about, such as pool (required)")
	f.StringVar(&objName, "obj-name", "", "name of the object the event is about (required)")
	f.StringVar(&details, "details", "", "event_details, a JSON object")
	f.StringVar(&id, "id", "", "the event's unique id, also the dedup key (default: a new UUIDv7)")
	f.StringVar(&source, "source", "", "the event's source (default: vigil-cli when --id is given)")
	addClientFlags(cmd, &cf)
	return cmd
}

func isJSONObject(s string) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal([]byte(s), &m) == nil && m != nil
}

// addFilterFlags adds the event filters; withPaging adds --limit and --cursor.
func addFilterFlags(cmd *cobra.Command, f *client.EventFilter, withPaging bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.EventID, "event-id", "", "only this event id, such as SERVER_DOWN")
	fl.StringVar(&f.ObjType, "obj-type", "", "only events about objects of this type")
	fl.StringVar(&f.ObjName, "obj-name", "", "only events about objects of this name")
	fl.StringVar(&f.Since, "since", "", "only events since this time (RFC 3339) or for this long (15m)")
	if withPaging {
		fl.IntVar(&f.Limit, "limit", 0, "at most this many events (server default 100, at most 1000)")
		fl.StringVar(&f.Cursor, "cursor", "", "continue after the events a previous list returned")
	}
}

// eventRow is what the event table shows of a CloudEvent.
type eventRow struct {
	ID   string    `json:"id"`
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	Data struct {
		EventID string `json:"event_id"`
		ObjType string `json:"obj_type"`
		ObjName string `json:"obj_name"`
	} `json:"data"`
}

func eventCells(ev json.RawMessage) []string {
	var r eventRow
	if err := json.Unmarshal(ev, &r); err != nil {
		return []string{"-", "?", "-", "-", "(not a CloudEvent)"}
	}
	eventID := r.Data.EventID
	if eventID == "" {
		eventID = r.Type
	}
	t := "-"
	if !r.Time.IsZero() {
		t = r.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	}
	return []string{t, dash(eventID), dash(r.Data.ObjType), dash(r.Data.ObjName), dash(r.ID)}
}

var eventHeader = []string{"TIME", "EVENT_ID", "OBJ_TYPE", "OBJ_NAME", "ID"}

func (e *env) eventsListCmd() *cobra.Command {
	var (
		cf     clientFlags
		filter client.EventFilter
	)
	output := newEnum("table", "table", "json")
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List stored events, oldest first",
		Long: `List stored events, oldest first. -o table prints TIME EVENT_ID OBJ_TYPE
OBJ_NAME ID, and "next cursor: ..." on stderr when the server gave a cursor
to continue from with --cursor; -o json prints a JSON array of CloudEvents.`,
		Example: "  vigil events list --event-id SERVER_DOWN --since 1h",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if filter.Limit < 0 {
				return usagef("--limit: must not be negative")
			}
			cl, err := e.client(&cf)
			if err != nil {
				return err
			}
			page, err := cl.ListEvents(cmd.Context(), filter)
			if err != nil {
				return err
			}
			if output.value == "json" {
				events := page.Events
				if events == nil {
					events = []json.RawMessage{}
				}
				return e.printData(events, "json")
			}
			t := newTable(e.stdout, eventHeader...)
			for _, ev := range page.Events {
				t.row(eventCells(ev)...)
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
	addFilterFlags(cmd, &filter, true)
	cmd.Flags().VarP(output, "output", "o", "output format: table or json")
	addClientFlags(cmd, &cf)
	return cmd
}

func (e *env) eventsTailCmd() *cobra.Command {
	var (
		cf     clientFlags
		filter client.EventFilter
	)
	output := newEnum("table", "table", "json")
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Follow events as they are stored",
		Long: `Follow events as they are stored, until interrupted. When the connection
drops, tail reconnects and resumes after the last event it printed. -o json
prints one CloudEvent per line.`,
		Example: "  vigil events tail --obj-type pool -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := e.client(&cf)
			if err != nil {
				return err
			}
			return e.tail(cmd.Context(), cl, filter, output.value == "json")
		},
	}
	addFilterFlags(cmd, &filter, false)
	cmd.Flags().VarP(output, "output", "o", "output format: table or json (one event per line)")
	addClientFlags(cmd, &cf)
	return cmd
}

const tailFormat = "%-29s  %-24s  %-12s  %-20s  %s\n"

// tail streams events to stdout, reconnecting after a dropped connection,
// until ctx ends. It fails on errors a retry cannot fix (4xx answers, a
// failing stdout).
func (e *env) tail(ctx context.Context, cl *client.Client, filter client.EventFilter, asJSON bool) error {
	if !asJSON {
		if _, err := fmt.Fprintf(e.stdout, tailFormat, toAny(eventHeader)...); err != nil {
			return err
		}
	}
	var (
		lastID  string
		backoff = e.tailBackoff
		maxWait = 15 * time.Second
	)
	emit := func(id string, ev json.RawMessage) error {
		lastID = id
		backoff = e.tailBackoff
		var b bytes.Buffer
		if asJSON {
			if err := json.Compact(&b, ev); err != nil {
				b.Write(bytes.ReplaceAll(ev, []byte("\n"), []byte(" ")))
			}
			b.WriteByte('\n')
		} else {
			fmt.Fprintf(&b, tailFormat, toAny(eventCells(ev))...)
		}
		if _, err := e.stdout.Write(b.Bytes()); err != nil {
			return &stdoutError{err}
		}
		return nil
	}
	for {
		f := filter
		if lastID != "" {
			f.Since = "" // Last-Event-ID says where to resume
		}
		err := cl.StreamEvents(ctx, f, lastID, emit)
		if ctx.Err() != nil {
			return nil //nolint:nilerr // Ctrl-C ends a tail normally
		}
		var ae *client.APIError
		var se *stdoutError
		switch {
		case errors.As(err, &se):
			return se.err
		case errors.As(err, &ae) && ae.Status < 500 && ae.Status != 429:
			return err
		}
		fmt.Fprintf(e.stderr, "vigil: %v; reconnecting in %v\n", err, backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxWait)
	}
}

// stdoutError is a failure to write the output, which ends tail.
type stdoutError struct{ err error }

func (e *stdoutError) Error() string { return e.err.Error() }

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func (e *env) eventsRejectedCmd() *cobra.Command {
	var (
		cf     clientFlags
		cursor string
		limit  int
	)
	output := newEnum("table", "table", "json")
	cmd := &cobra.Command{
		Use:   "rejected",
		Short: "List messages from vigil.ingest.> that failed validation",
		Long: `List messages that NATS clients published on vigil.ingest.> and that failed
validation, oldest first, with the reason. -o table prints TIME SUBJECT FIELD
REASON; -o json prints each with its payload (cut at 4 KiB).`,
		Example: "  vigil events rejected --limit 20 -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return usagef("--limit: must not be negative")
			}
			cl, err := e.client(&cf)
			if err != nil {
				return err
			}
			page, err := cl.ListRejected(cmd.Context(), cursor, limit)
			if err != nil {
				return err
			}
			if output.value == "json" {
				rej := page.Rejected
				if rej == nil {
					rej = []client.Rejected{}
				}
				return e.printData(rej, "json")
			}
			t := newTable(e.stdout, "TIME", "SUBJECT", "FIELD", "REASON")
			for _, r := range page.Rejected {
				t.row(r.Time.Format(time.RFC3339), r.Subject, r.Field, r.Reason)
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
	cmd.Flags().StringVar(&cursor, "cursor", "", "continue after an earlier page (its \"next cursor\")")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many (server default 100, at most 1000)")
	cmd.Flags().VarP(output, "output", "o", "output format: table or json")
	addClientFlags(cmd, &cf)
	return cmd
}
