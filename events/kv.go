package events

import (
	"errors"

	"github.com/nats-io/nats.go/jetstream"
)

// KVConflict reports whether err is a KV write (Create, Update, or a
// publish with an expected last sequence) refused because the key was not
// at the revision it expected.
func KVConflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) || errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
