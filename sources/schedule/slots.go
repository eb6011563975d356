package schedule

import (
	"encoding/binary"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// Next returns the first slot strictly after t, or the zero time when the
// expression matches nothing in the next five years.
func (s *Schedule) Next(t time.Time) time.Time {
	if s.every > 0 {
		d := s.every.Nanoseconds()
		ns := t.UnixNano()
		q := ns / d
		if ns < 0 && ns%d != 0 {
			q-- // floor, not truncation, before the epoch
		}
		return time.Unix(0, (q+1)*d).UTC()
	}
	n := s.cron.Next(t.In(s.Location))
	if n.IsZero() {
		return n
	}
	return n.UTC()
}

// Interval is the time from slot to the slot after it (at least a second).
func (s *Schedule) Interval(slot time.Time) time.Duration {
	n := s.Next(slot)
	if n.IsZero() || n.Sub(slot) < time.Second {
		return time.Second
	}
	return n.Sub(slot)
}

// lookbacks are the windows Latest searches, smallest first: the first one
// that holds a slot bounds the walk to the latest.
var lookbacks = []time.Duration{
	time.Minute, time.Hour, 24 * time.Hour, 32 * 24 * time.Hour, 367 * 24 * time.Hour, 5 * 366 * 24 * time.Hour,
}

// Latest returns the last slot in (after, t], or the zero time when there
// is none. A zero after means no lower bound beyond five years.
func (s *Schedule) Latest(after, t time.Time) time.Time {
	if s.every > 0 {
		// The one grid point in (t-every, t].
		l := s.Next(t.Add(-s.every))
		if !l.After(after) {
			return time.Time{}
		}
		return l
	}
	for i, w := range lookbacks {
		start := t.Add(-w)
		last := i == len(lookbacks)-1
		if !after.IsZero() && !start.After(after) {
			start, last = after, true
		}
		x := s.Next(start)
		if x.IsZero() || x.After(t) {
			if last {
				return time.Time{}
			}
			continue
		}
		for {
			n := s.Next(x)
			if n.IsZero() || n.After(t) {
				return x
			}
			x = n
		}
	}
	return time.Time{}
}

// Missed returns the slots in (after, before) that the schedule's missed
// policy runs, oldest first: none for skip, the latest for once, the
// oldest catch_up_limit for catch_up.
func (s *Schedule) Missed(after, before time.Time) []time.Time {
	if !before.After(after) {
		return nil
	}
	switch s.Spec.Missed {
	case MissedOnce:
		if l := s.Latest(after, before.Add(-time.Nanosecond)); !l.IsZero() {
			return []time.Time{l}
		}
	case MissedCatchUp:
		limit := 1
		if s.Spec.CatchUpLimit != nil {
			limit = *s.Spec.CatchUpLimit
		}
		var out []time.Time
		for x := s.Next(after); !x.IsZero() && x.Before(before) && len(out) < limit; x = s.Next(x) {
			out = append(out, x)
		}
		return out
	}
	return nil
}

// idSpace is the UUIDv5 namespace of the ids derived from a slot.
var idSpace = uuid.MustParse("9b6f2d4e-1c3a-5e87-b0d2-5a4c7e91f36b")

// slotUUID is a UUIDv7 whose time is the slot's and whose other bits derive
// from the purpose, the schedule and the slot, so every instance, and every
// retry, names the same thing.
func slotUUID(purpose, name string, slot time.Time) uuid.UUID {
	u := uuid.NewSHA1(idSpace, []byte(purpose+"\x00"+name+"\x00"+strconv.FormatInt(slot.UnixNano(), 10)))
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(slot.UnixMilli()))
	copy(u[0:6], ms[2:8])
	u[6] = u[6]&0x0f | 0x70
	return u
}

// ExecutionID is the id of the ControlScript execution of a schedule's
// slot ("exec-" and a UUID): the runner runs a repeated request once.
func ExecutionID(name string, slot time.Time) string {
	return "exec-" + slotUUID("execution", name, slot).String()
}

// EventID is the CloudEvents id of the event a schedule publishes for a
// slot; JetStream drops a repeat within its duplicate window, and
// consumers can drop later ones.
func EventID(name string, slot time.Time) string {
	return slotUUID("event", name, slot).String()
}

// resultEventID is the id of the SCHEDULER_ACTION_SUCCESS or _FAILURE
// event of a slot.
func resultEventID(name string, slot time.Time) string {
	return slotUUID("result", name, slot).String()
}

// slotKey is the key of a slot's claim: "<schedule>.<slot unix ns>".
func slotKey(name string, slot time.Time) string {
	return name + "." + strconv.FormatInt(slot.UnixNano(), 10)
}

// claimTTL is how long a slot's claim is kept: long enough that no
// instance can still be about to fire it.
func claimTTL(interval time.Duration) time.Duration {
	return max(2*interval, time.Hour)
}
