package events

import (
	"errors"
	"fmt"
	"strings"
)

// Subject prefixes. Events are stored under EventsPrefix; NATS clients
// publish to IngestPrefix, and messages that fail validation are kept under
// RejectedPrefix.
const (
	EventsPrefix = "vigil.events"
	// JournalPrefix is where the events stream stores events. JetStream
	// republishes each stored event to EventsPrefix, so subscribers there
	// see every event once: a duplicate is never stored, so never republished.
	JournalPrefix  = "vigil.journal"
	IngestPrefix   = "vigil.ingest"
	RejectedPrefix = "vigil.rejected"
)

const upperHex = "0123456789ABCDEF"

// needsEscape reports whether byte c must be percent-encoded inside a token.
func needsEscape(c byte) bool {
	return c < 0x21 || c > 0x7e || c == '.' || c == '*' || c == '>' || c == '%'
}

// EscapeToken turns any string into one NATS subject token: the empty string
// becomes "_", the string "_" becomes "%5F", and every byte that is not
// printable ASCII, and every '.', '*', '>' and '%', becomes %XX (upper-case
// hex of the UTF-8 byte). The result is never empty and never contains '.',
// '*', '>' or white space.
func EscapeToken(s string) string {
	switch s {
	case "":
		return "_"
	case "_":
		return "%5F"
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if needsEscape(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if needsEscape(c) {
			b.WriteByte('%')
			b.WriteByte(upperHex[c>>4])
			b.WriteByte(upperHex[c&0xf])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// UnescapeToken reverses [EscapeToken]. It fails on an empty token, on a
// '%' not followed by two upper-case hex digits, and on a byte that
// EscapeToken would have escaped.
func UnescapeToken(t string) (string, error) {
	switch t {
	case "":
		return "", errors.New("empty subject token")
	case "_":
		return "", nil
	}
	if !strings.Contains(t, "%") {
		for i := 0; i < len(t); i++ {
			if needsEscape(t[i]) {
				return "", fmt.Errorf("subject token %q: byte 0x%02X must be escaped", t, t[i])
			}
		}
		return t, nil
	}
	b := make([]byte, 0, len(t))
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c == '%' {
			if i+2 >= len(t) {
				return "", fmt.Errorf("subject token %q: truncated escape at offset %d", t, i)
			}
			hi, lo := unhex(t[i+1]), unhex(t[i+2])
			if hi < 0 || lo < 0 {
				return "", fmt.Errorf("subject token %q: bad escape %q at offset %d", t, t[i:i+3], i)
			}
			b = append(b, byte(hi<<4|lo))
			i += 2
			continue
		}
		if needsEscape(c) {
			return "", fmt.Errorf("subject token %q: byte 0x%02X must be escaped", t, c)
		}
		b = append(b, c)
	}
	return string(b), nil
}

// unhex returns the value of an upper-case hex digit, or -1.
func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// SubjectFor returns the subject an event is stored under:
// vigil.events.<EVENT_ID>.<obj_type>.<obj_name>, each token escaped with
// [EscapeToken].
func SubjectFor(eventID, objType, objName string) string {
	return EventsPrefix + "." + EscapeToken(eventID) + "." + EscapeToken(objType) + "." + EscapeToken(objName)
}

// NATSSubject returns the subject e is stored under; see [SubjectFor].
func (e *Event) NATSSubject() string {
	return SubjectFor(e.Data.EventID, e.Data.ObjType, e.Data.ObjName)
}

// FilterSubject returns a subject filter over events: an empty
// argument matches any value ("*"), the others are escaped with
// [EscapeToken]. An object with an empty name therefore cannot be selected
// alone; its token is "_".
func FilterSubject(eventID, objType, objName string) string {
	tok := func(s string) string {
		if s == "" {
			return "*"
		}
		return EscapeToken(s)
	}
	return EventsPrefix + "." + tok(eventID) + "." + tok(objType) + "." + tok(objName)
}

// toJournal maps a subject or filter under EventsPrefix to the events
// stream's own subject.
func toJournal(subject string) string {
	return JournalPrefix + strings.TrimPrefix(subject, EventsPrefix)
}

// journalSubject is the subject the events stream stores e under.
func (e *Event) journalSubject() string {
	return toJournal(e.NATSSubject())
}

// ParseSubject splits a subject made by [SubjectFor] back into the event id,
// object type and object name.
func ParseSubject(subject string) (eventID, objType, objName string, err error) {
	rest, ok := strings.CutPrefix(subject, EventsPrefix+".")
	if !ok {
		return "", "", "", fmt.Errorf("subject %q: not under %s", subject, EventsPrefix)
	}
	toks := strings.Split(rest, ".")
	if len(toks) != 3 {
		return "", "", "", fmt.Errorf("subject %q: want 5 tokens, have %d", subject, len(toks)+2)
	}
	var out [3]string
	for i, t := range toks {
		if out[i], err = UnescapeToken(t); err != nil {
			return "", "", "", fmt.Errorf("subject %q: %w", subject, err)
		}
	}
	return out[0], out[1], out[2], nil
}
