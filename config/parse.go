package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize bounds one file of objects, and also the size of one YAML
// document once its anchors and aliases are expanded.
const MaxFileSize = 8 << 20

// maxDepth bounds the nesting of a document, alias hops included.
const maxDepth = 1000

// ParseError is a failure to read objects from a file. Line is 1-based and 0
// when unknown; Object is "Kind/name" when known.
type ParseError struct {
	File   string
	Line   int
	Object string
	Err    error
}

// Error returns "file:line: Kind/name: message".
func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Object != "" {
		b.WriteString(e.Object)
		b.WriteString(": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *ParseError) Unwrap() error { return e.Err }

// Source is an object together with the place it was read from.
type Source struct {
	Object *Object
	File   string
	Line   int
}

// Pos returns "file:line".
func (s Source) Pos() string { return s.File + ":" + strconv.Itoa(s.Line) }

// ParseObjects reads the objects in r; name is used in errors and to
// recognise JSON files by their ".json" extension.
//
// YAML input is a stream of documents separated by "---"; each document is
// one object, and empty documents are skipped. JSON input is one object, an
// array of objects, or {"objects": [...]}; {"items": [...]}, which `vigil get
// -o json` prints, is accepted too. An object is a mapping with the keys kind,
// name, spec and metadata only. Of metadata only revision is read; its other
// keys (uuid, created, ...) are ignored so that what `vigil get` prints can be
// applied back. Values that JSON cannot represent are refused: mapping keys
// that are not strings, custom tags, infinities. Anchors and aliases are
// expanded, but a document that expands to more than [MaxFileSize] is
// refused.
func ParseObjects(r io.Reader, name string) ([]*Object, error) {
	srcs, err := parseSources(r, name)
	if err != nil {
		return nil, err
	}
	objs := make([]*Object, len(srcs))
	for i, s := range srcs {
		objs[i] = s.Object
	}
	return objs, nil
}

// ReadObjectFiles reads the objects in paths, "-" being standard input; see
// [ReadObjectSources].
func ReadObjectFiles(paths []string) ([]*Object, error) {
	srcs, err := ReadObjectSources(paths, os.Stdin)
	if err != nil {
		return nil, err
	}
	objs := make([]*Object, len(srcs))
	for i, s := range srcs {
		objs[i] = s.Object
	}
	return objs, nil
}

// ReadObjectSources reads the objects in paths with [ParseObjects] and says
// where each one was found. A path is a file, "-" for stdin (at most once),
// or a directory, whose *.yaml, *.yml and *.json files are read in name order
// (subdirectories are not). A file may hold at most [MaxFileSize] bytes. The
// same Kind/name twice across the set is an error that names both places.
// Every file is read; the errors of all files are joined.
func ReadObjectSources(paths []string, stdin io.Reader) ([]Source, error) {
	var (
		out      []Source
		errs     []error
		seen     = map[string]Source{}
		stdinUse int
	)
	for _, p := range paths {
		if p == "-" {
			if stdinUse++; stdinUse > 1 {
				errs = append(errs, errors.New("read objects: stdin (-) given more than once"))
				continue
			}
		}
		files, err := expandPath(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range files {
			srcs, err := readSourceFile(f, stdin)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, s := range srcs {
				key := canonicalKind(s.Object.Kind) + "/" + s.Object.Name
				if prev, dup := seen[key]; dup {
					errs = append(errs, &ParseError{
						File: s.File, Line: s.Line, Object: s.Object.Kind + "/" + s.Object.Name,
						Err: fmt.Errorf("defined twice, also at %s", prev.Pos()),
					})
					continue
				}
				seen[key] = s
				out = append(out, s)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// canonicalKind returns the registered spelling of kind, or kind in lower
// case when it is not registered, so that "pool" and "Pool" collide.
func canonicalKind(kind string) string {
	if k, ok := Kinds.Lookup(kind); ok {
		return k.Name
	}
	return strings.ToLower(kind)
}

func expandPath(p string) ([]string, error) {
	if p == "-" {
		return []string{p}, nil
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("read objects: %w", err)
	}
	if !fi.IsDir() {
		return []string{p}, nil
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return nil, fmt.Errorf("read objects: %w", err)
	}
	var files []string
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".yaml", ".yml", ".json":
			files = append(files, filepath.Join(p, e.Name()))
		}
	}
	sort.Strings(files)
	return files, nil
}

func readSourceFile(path string, stdin io.Reader) ([]Source, error) {
	if path == "-" {
		if stdin == nil {
			return nil, errors.New("read objects: no stdin")
		}
		return parseSources(stdin, "<stdin>")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read objects: %w", err)
	}
	defer f.Close()
	return parseSources(f, path)
}

func parseSources(r io.Reader, name string) ([]Source, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, &ParseError{File: name, Err: fmt.Errorf("read: %w", err)}
	}
	if len(data) > MaxFileSize {
		return nil, &ParseError{File: name, Err: fmt.Errorf("larger than %d MiB", MaxFileSize>>20)}
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	p := &parser{file: name}
	if isJSON(data, name) {
		root, err := jsonNode(data)
		if err != nil {
			return nil, p.fail(err, "")
		}
		if root == nil {
			return nil, nil
		}
		if err := p.document(root); err != nil {
			return nil, err
		}
		return p.out, nil
	}
	if err := p.yamlStream(data); err != nil {
		return nil, err
	}
	return p.out, nil
}

// isJSON reports whether data is to be read as JSON: a .json file, or text
// that starts like JSON and is valid JSON (otherwise it may be YAML flow
// style, and the YAML parser gives the better errors).
func isJSON(data []byte, name string) bool {
	if strings.EqualFold(filepath.Ext(name), ".json") {
		return true
	}
	t := bytes.TrimLeft(data, " \t\r\n")
	return len(t) > 0 && (t[0] == '{' || t[0] == '[') && json.Valid(t)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// decodeNode reads the next document. The YAML parser is not ours: a panic
// in it must not take the caller down, so it becomes an error.
func decodeNode(dec *yaml.Decoder, doc *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: parser failed: %v", r)
		}
	}()
	return dec.Decode(doc)
}

func (p *parser) yamlStream(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		if err := decodeNode(dec, &doc); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
				line, _ := strconv.Atoi(m[1])
				return &ParseError{File: p.file, Line: line, Err: errors.New(m[2])}
			}
			return &ParseError{File: p.file, Err: errors.New(strings.TrimPrefix(err.Error(), "yaml: "))}
		}
		root := &doc
		if doc.Kind == yaml.DocumentNode {
			if len(doc.Content) == 0 {
				continue
			}
			root = doc.Content[0]
		}
		if err := p.document(root); err != nil {
			return err
		}
	}
}

// parser turns the documents of one file into objects.
type parser struct {
	file string
	out  []Source
}

// lineError is an error at a line of the current file.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return e.err.Error() }
func (e *lineError) Unwrap() error { return e.err }

func errorAt(n *yaml.Node, format string, args ...any) error {
	return &lineError{line: n.Line, err: fmt.Errorf(format, args...)}
}

func (p *parser) fail(err error, object string) error {
	var le *lineError
	if errors.As(err, &le) {
		return &ParseError{File: p.file, Line: le.line, Object: object, Err: le.err}
	}
	return &ParseError{File: p.file, Object: object, Err: err}
}

// document reads one YAML document or the one JSON value of a file.
func (p *parser) document(root *yaml.Node) error {
	c := newConverter()
	n, err := c.resolve(root)
	if err != nil {
		return p.fail(err, "")
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return nil // an empty document
		}
	case yaml.SequenceNode:
		return p.list(c, n)
	case yaml.MappingNode:
		pairs, err := c.pairs(n)
		if err != nil {
			return p.fail(err, "")
		}
		if len(pairs) == 1 && (pairs[0].key == "objects" || pairs[0].key == "items") {
			v, err := c.resolve(pairs[0].value)
			if err != nil {
				return p.fail(err, "")
			}
			if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" {
				return nil
			}
			if v.Kind != yaml.SequenceNode {
				return p.fail(errorAt(v, "%s: must be a list of objects, got %s", pairs[0].key, describe(v)), "")
			}
			return p.list(c, v)
		}
		return p.object(c, n, pairs)
	}
	return p.fail(errorAt(n, "a document must be an object with kind, name and spec, got %s", describe(n)), "")
}

func (p *parser) list(c *converter, seq *yaml.Node) error {
	for _, item := range seq.Content {
		n, err := c.resolve(item)
		if err != nil {
			return p.fail(err, "")
		}
		if n.Kind != yaml.MappingNode {
			return p.fail(errorAt(n, "an object must be a mapping with kind, name and spec, got %s", describe(n)), "")
		}
		pairs, err := c.pairs(n)
		if err != nil {
			return p.fail(err, "")
		}
		if err := p.object(c, n, pairs); err != nil {
			return err
		}
	}
	return nil
}

// object reads one object from the mapping n with the given pairs.
func (p *parser) object(c *converter, n *yaml.Node, pairs []pair) error {
	var kindNode, nameNode, specNode, metaNode *yaml.Node
	var kind, name string
	for _, kv := range pairs {
		v, err := c.resolve(kv.value)
		if err != nil {
			return p.fail(err, "")
		}
		switch kv.key {
		case "kind":
			kindNode = v
			if s, ok := stringValue(v); ok {
				kind = s
			}
		case "name":
			nameNode = v
			if s, ok := stringValue(v); ok {
				name = s
			}
		case "spec":
			specNode = v
		case "metadata":
			metaNode = v
		}
	}
	label := ""
	if kind != "" && name != "" {
		label = kind + "/" + name
	}
	for _, kv := range pairs {
		switch kv.key {
		case "kind", "name", "spec", "metadata":
		case "status":
			// What vigil reports on reads: ignored, so that an object read
			// back can be applied as it is.
		default:
			return p.fail(errorAt(kv.keyNode, "unknown field %q (an object has kind, name, spec and metadata)", kv.key), label)
		}
	}
	switch {
	case kindNode == nil:
		return p.fail(errorAt(n, "kind: is required"), label)
	case kind == "":
		if _, ok := stringValue(kindNode); ok {
			return p.fail(errorAt(kindNode, "kind: must not be empty"), label)
		}
		return p.fail(errorAt(kindNode, "kind: must be a string, got %s", describe(kindNode)), label)
	case nameNode == nil:
		return p.fail(errorAt(n, "name: is required"), label)
	case name == "":
		if _, ok := stringValue(nameNode); ok {
			return p.fail(errorAt(nameNode, "name: must not be empty"), label)
		}
		return p.fail(errorAt(nameNode, "name: must be a string, got %s (quote it)", describe(nameNode)), label)
	}
	obj := &Object{Kind: kind, Name: name, Spec: json.RawMessage("{}")}
	if specNode != nil && !isNull(specNode) {
		if specNode.Kind != yaml.MappingNode {
			return p.fail(errorAt(specNode, "spec: must be a mapping, got %s", describe(specNode)), label)
		}
		spec, err := c.json(specNode)
		if err != nil {
			return p.fail(err, label)
		}
		obj.Spec = spec
	}
	if metaNode != nil && !isNull(metaNode) {
		if metaNode.Kind != yaml.MappingNode {
			return p.fail(errorAt(metaNode, "metadata: must be a mapping, got %s", describe(metaNode)), label)
		}
		// Convert all of it so that what JSON cannot hold is refused here
		// too, then keep only the revision.
		if _, err := c.json(metaNode); err != nil {
			return p.fail(err, label)
		}
		mpairs, err := c.pairs(metaNode)
		if err != nil {
			return p.fail(err, label)
		}
		for _, kv := range mpairs {
			if kv.key != "revision" {
				continue
			}
			v, err := c.resolve(kv.value)
			if err != nil {
				return p.fail(err, label)
			}
			if isNull(v) {
				continue
			}
			rev, err := revisionValue(v)
			if err != nil {
				return p.fail(err, label)
			}
			obj.Metadata.Revision = &rev
		}
	}
	p.out = append(p.out, Source{Object: obj, File: p.file, Line: n.Line})
	return nil
}

func revisionValue(v *yaml.Node) (uint64, error) {
	if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!int" {
		num, err := numberLiteral(v)
		if err == nil {
			if rev, err := strconv.ParseUint(num, 10, 64); err == nil {
				return rev, nil
			}
		}
	}
	return 0, errorAt(v, "metadata.revision: must be a non-negative integer, got %s", describe(v))
}

func stringValue(n *yaml.Node) (string, bool) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		return n.Value, true
	}
	return "", false
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// describe names what n is, for errors.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("the string %q", v)
		case "!!null":
			return "null"
		case "!!int", "!!float":
			return "the number " + v
		case "!!bool":
			return "the boolean " + v
		}
		return fmt.Sprintf("%s %q", n.ShortTag(), v)
	}
	return "an alias"
}

// pair is one entry of a mapping, its key a string.
type pair struct {
	key     string
	keyNode *yaml.Node
	value   *yaml.Node
}

// converter turns the nodes of one document into JSON, expanding aliases and
// merge keys, within a budget of output bytes.
type converter struct {
	budget int
	active map[*yaml.Node]bool   // nodes being expanded, to catch cycles
	memo   map[*yaml.Node][]byte // JSON of anchored nodes
	pmemo  map[*yaml.Node][]pair // pairs of mappings
	depth  int
}

func newConverter() *converter {
	return &converter{
		budget: MaxFileSize,
		active: map[*yaml.Node]bool{},
		memo:   map[*yaml.Node][]byte{},
		pmemo:  map[*yaml.Node][]pair{},
	}
}

// resolve follows aliases to the node they name.
func (c *converter) resolve(n *yaml.Node) (*yaml.Node, error) {
	for hops := 0; n.Kind == yaml.AliasNode; hops++ {
		if n.Alias == nil || hops > maxDepth {
			return nil, errorAt(n, "bad alias *%s", n.Value)
		}
		n = n.Alias
	}
	switch n.Kind {
	case yaml.ScalarNode, yaml.MappingNode, yaml.SequenceNode:
		return n, nil
	}
	return nil, errorAt(n, "unexpected YAML node")
}

func (c *converter) enter(n *yaml.Node) error {
	if c.active[n] {
		return errorAt(n, "an alias refers to a node that contains it")
	}
	c.depth++
	if c.depth > maxDepth {
		return errorAt(n, "nested more than %d levels deep", maxDepth)
	}
	c.active[n] = true
	return nil
}

func (c *converter) leave(n *yaml.Node) {
	c.depth--
	delete(c.active, n)
}

// pairs returns the entries of the mapping n with merge keys ("<<") applied:
// explicit keys win over merged ones, and earlier merged mappings over later
// ones. Keys must be strings and must not repeat.
func (c *converter) pairs(n *yaml.Node) ([]pair, error) {
	if ps, ok := c.pmemo[n]; ok {
		return ps, nil
	}
	if err := c.enter(n); err != nil {
		return nil, err
	}
	defer c.leave(n)
	if n.ShortTag() != "!!map" {
		return nil, errorAt(n, "unsupported tag %s", n.Tag)
	}
	if len(n.Content)%2 != 0 {
		return nil, errorAt(n, "malformed mapping")
	}
	var (
		out    []pair
		seen   = map[string]bool{}
		merges []*yaml.Node
	)
	for i := 0; i < len(n.Content); i += 2 {
		k, err := c.resolve(n.Content[i])
		if err != nil {
			return nil, err
		}
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, n.Content[i+1])
			continue
		}
		key, ok := stringValue(k)
		if !ok {
			if k.Kind == yaml.ScalarNode {
				return nil, errorAt(k, "mapping key %s is not a string; quote it", k.Value)
			}
			return nil, errorAt(k, "mapping key is %s; keys must be strings", describe(k))
		}
		if seen[key] {
			return nil, errorAt(k, "key %q appears twice", key)
		}
		seen[key] = true
		out = append(out, pair{key: key, keyNode: k, value: n.Content[i+1]})
	}
	for _, m := range merges {
		src, err := c.resolve(m)
		if err != nil {
			return nil, err
		}
		var sources []*yaml.Node
		switch src.Kind {
		case yaml.MappingNode:
			sources = []*yaml.Node{src}
		case yaml.SequenceNode:
			for _, item := range src.Content {
				s, err := c.resolve(item)
				if err != nil {
					return nil, err
				}
				sources = append(sources, s)
			}
		default:
			return nil, errorAt(src, "a merge key (<<) takes a mapping or a list of mappings, got %s", describe(src))
		}
		for _, s := range sources {
			if s.Kind != yaml.MappingNode {
				return nil, errorAt(s, "a merge key (<<) takes a mapping or a list of mappings, got %s", describe(s))
			}
			ps, err := c.pairs(s)
			if err != nil {
				return nil, err
			}
			for _, kv := range ps {
				if !seen[kv.key] {
					seen[kv.key] = true
					out = append(out, kv)
				}
			}
		}
	}
	c.pmemo[n] = out
	return out, nil
}

// json returns n as JSON.
func (c *converter) json(n *yaml.Node) (json.RawMessage, error) {
	var buf bytes.Buffer
	if err := c.write(&buf, n); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (c *converter) spend(n *yaml.Node, size int) error {
	c.budget -= size
	if c.budget < 0 {
		return errorAt(n, "the document expands to more than %d MiB", MaxFileSize>>20)
	}
	return nil
}

func (c *converter) write(buf *bytes.Buffer, n *yaml.Node) error {
	n, err := c.resolve(n)
	if err != nil {
		return err
	}
	if b, ok := c.memo[n]; ok {
		if err := c.spend(n, len(b)); err != nil {
			return err
		}
		buf.Write(b)
		return nil
	}
	var ps []pair
	if n.Kind == yaml.MappingNode {
		// Before entering n: pairs enters it too, to catch merge cycles.
		if ps, err = c.pairs(n); err != nil {
			return err
		}
	}
	if err := c.enter(n); err != nil {
		return err
	}
	defer c.leave(n)
	start := buf.Len()
	switch n.Kind {
	case yaml.ScalarNode:
		s, err := scalarJSON(n)
		if err != nil {
			return err
		}
		if err := c.spend(n, len(s)); err != nil {
			return err
		}
		buf.WriteString(s)
	case yaml.SequenceNode:
		if n.ShortTag() != "!!seq" {
			return errorAt(n, "unsupported tag %s", n.Tag)
		}
		if err := c.spend(n, 2+len(n.Content)); err != nil {
			return err
		}
		buf.WriteByte('[')
		for i, item := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := c.write(buf, item); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case yaml.MappingNode:
		if err := c.spend(n, 2+len(ps)); err != nil {
			return err
		}
		buf.WriteByte('{')
		for i, kv := range ps {
			if i > 0 {
				buf.WriteByte(',')
			}
			k, _ := json.Marshal(kv.key)
			if err := c.spend(kv.keyNode, len(k)+1); err != nil {
				return err
			}
			buf.Write(k)
			buf.WriteByte(':')
			if err := c.write(buf, kv.value); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	}
	if n.Anchor != "" {
		c.memo[n] = bytes.Clone(buf.Bytes()[start:])
	}
	return nil
}

// scalarJSON returns the JSON of a scalar. Strings stay strings, whatever
// they look like ("60s", "256Mi", timestamps); numbers keep their literal
// when it is valid JSON.
func scalarJSON(n *yaml.Node) (string, error) {
	switch tag := n.ShortTag(); tag {
	case "!!str", "!!timestamp", "!!binary":
		b, _ := json.Marshal(n.Value)
		return string(b), nil
	case "!!null":
		return "null", nil
	case "!!bool":
		var v bool
		if err := n.Decode(&v); err != nil {
			return "", errorAt(n, "bad boolean %q", n.Value)
		}
		return strconv.FormatBool(v), nil
	case "!!int", "!!float":
		return numberLiteral(n)
	case "!!merge":
		return "", errorAt(n, "a merge key (<<) is allowed only as a mapping key")
	default:
		return "", errorAt(n, "unsupported tag %s", n.Tag)
	}
}

var jsonNumberRE = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// numberLiteral returns a YAML number as a JSON number.
func numberLiteral(n *yaml.Node) (string, error) {
	if jsonNumberRE.MatchString(n.Value) {
		return n.Value, nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return "", errorAt(n, "bad number %q", n.Value)
	}
	switch v := v.(type) {
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return "", errorAt(n, "%s cannot be written in JSON", n.Value)
		}
		return strconv.FormatFloat(v, 'g', -1, 64), nil
	}
	return "", errorAt(n, "bad number %q", n.Value)
}

// jsonNode reads one JSON value into a YAML node tree whose nodes carry the
// lines they start on, so that JSON and YAML share one path and one kind of
// error. It returns nil for empty input.
func jsonNode(data []byte) (*yaml.Node, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	lines := newLineIndex(data)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	wrap := func(err error) error {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return &lineError{line: lines.at(int(se.Offset) - 1), err: fmt.Errorf("invalid JSON: %w", err)}
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return &lineError{line: lines.at(len(data) - 1), err: errors.New("invalid JSON: unexpected end of input")}
		}
		return &lineError{line: lines.at(int(dec.InputOffset()) - 1), err: fmt.Errorf("invalid JSON: %w", err)}
	}
	var value func(depth int) (*yaml.Node, error)
	value = func(depth int) (*yaml.Node, error) {
		if depth > maxDepth {
			return nil, &lineError{line: lines.at(int(dec.InputOffset()) - 1), err: fmt.Errorf("nested more than %d levels deep", maxDepth)}
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, wrap(err)
		}
		n := &yaml.Node{Line: lines.at(int(dec.InputOffset()) - 1)}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				n.Kind, n.Tag = yaml.MappingNode, "!!map"
				for dec.More() {
					kt, err := dec.Token()
					if err != nil {
						return nil, wrap(err)
					}
					key, _ := kt.(string)
					n.Content = append(n.Content, &yaml.Node{
						Kind: yaml.ScalarNode, Tag: "!!str", Value: key,
						Line: lines.at(int(dec.InputOffset()) - 1),
					})
					v, err := value(depth + 1)
					if err != nil {
						return nil, err
					}
					n.Content = append(n.Content, v)
				}
			case '[':
				n.Kind, n.Tag = yaml.SequenceNode, "!!seq"
				for dec.More() {
					v, err := value(depth + 1)
					if err != nil {
						return nil, err
					}
					n.Content = append(n.Content, v)
				}
			default:
				return nil, wrap(fmt.Errorf("unexpected %q", rune(t)))
			}
			if _, err := dec.Token(); err != nil { // the closing delimiter
				return nil, wrap(err)
			}
		case string:
			n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!str", t
		case json.Number:
			n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!int", string(t)
			if strings.ContainsAny(string(t), ".eE") {
				n.Tag = "!!float"
			}
		case bool:
			n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!bool", strconv.FormatBool(t)
		case nil:
			n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!null", "null"
		}
		return n, nil
	}
	root, err := value(0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &lineError{line: lines.at(int(dec.InputOffset()) - 1), err: errors.New("invalid JSON: data after the top-level value")}
	}
	return root, nil
}

// lineIndex maps byte offsets to 1-based line numbers.
type lineIndex []int // offsets of the newlines

func newLineIndex(data []byte) lineIndex {
	var idx lineIndex
	for i, b := range data {
		if b == '\n' {
			idx = append(idx, i)
		}
	}
	return idx
}

func (idx lineIndex) at(off int) int {
	return sort.SearchInts(idx, off) + 1
}

// JSONToYAML converts one JSON value to a YAML document, keeping the order of
// object keys and writing strings that hold line breaks in literal block
// style. [ParseObjects] reads an object written this way back unchanged.
func JSONToYAML(data []byte) ([]byte, error) {
	n, err := jsonNode(data)
	if err != nil {
		return nil, err
	}
	if n == nil {
		return nil, errors.New("empty JSON")
	}
	styleNodes(n)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	return buf.Bytes(), nil
}

func styleNodes(n *yaml.Node) {
	n.Line = 0
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		switch {
		case strings.Contains(n.Value, "\n"):
			n.Style = yaml.LiteralStyle
		case yaml11Bool[n.Value]:
			// Plain for YAML 1.2 but a boolean to YAML 1.1 readers.
			n.Style = yaml.DoubleQuotedStyle
		}
	}
	for _, c := range n.Content {
		styleNodes(c)
	}
}

var yaml11Bool = map[string]bool{
	"y": true, "Y": true, "yes": true, "Yes": true, "YES": true,
	"n": true, "N": true, "no": true, "No": true, "NO": true,
	"on": true, "On": true, "ON": true, "off": true, "Off": true, "OFF": true,
}
