package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/vigilhq/vigil/config"
)

// table writes aligned columns.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.row(header...)
	return t
}

// cellReplacer keeps tabs and line breaks in a cell from breaking the columns.
var cellReplacer = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ")

func (t *table) row(cells ...string) {
	clean := make([]string, len(cells))
	for i, c := range cells {
		clean[i] = cellReplacer.Replace(c)
	}
	fmt.Fprintln(t.tw, strings.Join(clean, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func fmtTimePtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return fmtTime(*t)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printData prints v as indented JSON or as YAML.
func (e *env) printData(v any, format string) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	data := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if format == "yaml" {
		y, err := config.JSONToYAML(data)
		if err != nil {
			return err
		}
		_, err = e.stdout.Write(y)
		return err
	}
	_, err := fmt.Fprintf(e.stdout, "%s\n", data)
	return err
}

// trimCell shortens s to at most n characters for a table cell, ending a
// cut one with "...".
func trimCell(s string, n int) string {
	s = strings.TrimSpace(cellReplacer.Replace(s))
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:n-3])) + "..."
}

// objectCell is "obj_type/obj_name", or the name alone when there is no
// type; "-" for neither.
func objectCell(objType, objName string) string {
	switch {
	case objType == "" && objName == "":
		return "-"
	case objType == "":
		return objName
	}
	return objType + "/" + objName
}

// pairs collects the "Key: value" lines of a show command.
type pairs [][2]string

// add adds a line; line breaks and tabs in v become spaces.
func (p *pairs) add(k, v string) { *p = append(*p, [2]string{k + ":", cellReplacer.Replace(v)}) }

// writeTo writes the lines with the values aligned.
func (p pairs) writeTo(b *bytes.Buffer) {
	width := 0
	for _, kv := range p {
		width = max(width, len(kv[0]))
	}
	for _, kv := range p {
		b.WriteString(strings.TrimRight(fmt.Sprintf("%-*s %s", width, kv[0], kv[1]), " "))
		b.WriteByte('\n')
	}
}
