// Package httpmsg holds the heads of HTTP/1.x messages as the proxy reads,
// edits and writes them: a request or status line and an ordered list of
// header fields whose bytes point into the connection's read buffer until
// a DataScript or the proxy replaces them. Nothing here allocates while a
// head is only read and written on.
package httpmsg

import (
	"bytes"
	"net/http"
	"strconv"
)

// Field is one header field; Name keeps the case it arrived in.
type Field struct {
	Name, Value []byte
}

// Fields is an ordered list of header fields.
type Fields []Field

// Get returns the value of the first field named name (case-insensitive).
func (f Fields) Get(name string) ([]byte, bool) {
	for i := range f {
		if EqualFold(f[i].Name, name) {
			return f[i].Value, true
		}
	}
	return nil, false
}

// Values returns the values of every field named name, in order.
func (f Fields) Values(name string) [][]byte {
	var out [][]byte
	for i := range f {
		if EqualFold(f[i].Name, name) {
			out = append(out, f[i].Value)
		}
	}
	return out
}

// Has reports whether a field named name is present.
func (f Fields) Has(name string) bool {
	_, ok := f.Get(name)
	return ok
}

// Add appends a field, even when one of that name exists.
func (f *Fields) Add(name, value string) {
	*f = append(*f, Field{Name: []byte(name), Value: []byte(value)})
}

// Remove deletes every field named name and reports how many there were.
func (f *Fields) Remove(name string) int {
	out := (*f)[:0]
	n := 0
	for _, fl := range *f {
		if EqualFold(fl.Name, name) {
			n++
			continue
		}
		out = append(out, fl)
	}
	clear((*f)[len(out):])
	*f = out
	return n
}

// Replace sets the field named name to value: the first field of that
// name takes the value and the others are removed; a missing field is
// added at the end.
func (f *Fields) Replace(name, value string) {
	for i := range *f {
		if EqualFold((*f)[i].Name, name) {
			(*f)[i].Value = []byte(value)
			rest := (*f)[i+1:]
			rest.Remove(name)
			*f = (*f)[:i+1+len(rest)]
			return
		}
	}
	f.Add(name, value)
}

// EqualFold compares b with the ASCII name s without regard to case.
func EqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if x == y {
			continue
		}
		if x|0x20 != y|0x20 || x|0x20 < 'a' || x|0x20 > 'z' {
			return false
		}
	}
	return true
}

// Request is a request's head.
type Request struct {
	Method []byte
	// Target is the request target as sent: origin form (/path?query)
	// in all but CONNECT and absolute-form requests.
	Target []byte
	// Major, Minor is the HTTP version.
	Major, Minor int
	Fields       Fields
}

// Path returns the target's path (before any '?'), undecoded.
func (r *Request) Path() []byte {
	p, _, _ := bytes.Cut(r.Target, []byte{'?'})
	return p
}

// Query returns the target's query (after the first '?'), undecoded, and
// whether there was a '?'.
func (r *Request) Query() ([]byte, bool) {
	_, q, ok := bytes.Cut(r.Target, []byte{'?'})
	return q, ok
}

// Host returns the Host header without its port.
func (r *Request) Host() []byte {
	h, _ := r.Fields.Get("Host")
	return stripPort(h)
}

// stripPort removes ":port" from a host, leaving an IPv6 literal's brackets.
func stripPort(h []byte) []byte {
	if i := bytes.LastIndexByte(h, ':'); i >= 0 && !bytes.Contains(h[i:], []byte{']'}) {
		return h[:i]
	}
	return h
}

// AppendTo writes the head, ending with the blank line.
func (r *Request) AppendTo(b []byte) []byte {
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = append(b, r.Target...)
	b = append(b, " HTTP/"...)
	b = strconv.AppendInt(b, int64(r.Major), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(r.Minor), 10)
	b = append(b, '\r', '\n')
	return r.Fields.appendTo(b)
}

func (f Fields) appendTo(b []byte) []byte {
	for _, fl := range f {
		b = append(b, fl.Name...)
		b = append(b, ':', ' ')
		b = append(b, fl.Value...)
		b = append(b, '\r', '\n')
	}
	return append(b, '\r', '\n')
}

// Response is a response's head.
type Response struct {
	Major, Minor int
	Status       int
	Reason       []byte
	Fields       Fields
}

// AppendTo writes the head, ending with the blank line.
func (r *Response) AppendTo(b []byte) []byte {
	b = append(b, "HTTP/"...)
	b = strconv.AppendInt(b, int64(r.Major), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(r.Minor), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, ' ')
	if len(r.Reason) > 0 {
		b = append(b, r.Reason...)
	} else {
		b = append(b, http.StatusText(r.Status)...)
	}
	b = append(b, '\r', '\n')
	return r.Fields.appendTo(b)
}
