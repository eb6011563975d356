package events

import "time"

// PublishResult reports what JetStream did with a published event.
type PublishResult struct {
	// Seq is the event's sequence in the events stream.
	Seq uint64
	// Duplicate is true when an event with the same id was already stored;
	// Seq is then the sequence of the first one.
	Duplicate bool
}

// Stored is one event as kept in the events stream: its sequence and its
// CloudEvents JSON document.
type Stored struct {
	Seq  uint64
	Data []byte
}

// Filter selects stored events. Empty fields match everything.
type Filter struct {
	// EventID, ObjType and ObjName match the event's subject tokens.
	EventID, ObjType, ObjName string
	// Since starts at the first event stored at or after this time.
	Since time.Time
	// StartSeq starts at this stream sequence; it wins over Since.
	StartSeq uint64
	// Limit bounds one List call; 0 means DefaultListLimit.
	Limit int
}
