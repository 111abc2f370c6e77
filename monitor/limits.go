package monitor

import (
	"errors"
	"fmt"
)

// ErrRejected marks the errors of events a store refuses for good: writing
// them again would fail again. Ingestion sets such an event aside in the
// rejected stream (sendhooks.RejectedStream) and stores the rest of its
// batch; any other error is taken for a passing fault and retried.
var ErrRejected = errors.New("refused for good by the store")

// Limits of a stored hook. Free text (errors, responses, meta data, the
// job) is cut at ingestion instead (see fitForStorage); the fields below
// identify or locate a webhook, so a hook that exceeds them is refused
// whole rather than stored under a cut identity.
const (
	MaxIDBytes  = 1024    // the stream id, webhookId and messageId
	MaxURLBytes = 8 << 10 // the url
	MaxAttempts = 1000    // attempts kept per webhook
)

// CheckLimits reports, wrapping ErrRejected, a hook that exceeds the
// limits above. Every store calls it before it writes a hook.
func (h *Hook) CheckLimits() error {
	for _, f := range []struct{ name, v string }{{"webhookId", h.ExternalID}, {"messageId", h.MessageID}, {"streamId", h.ID}} {
		if len(f.v) > MaxIDBytes {
			return fmt.Errorf("%w: the %s is %d bytes long; at most %d are kept", ErrRejected, f.name, len(f.v), MaxIDBytes)
		}
	}
	if len(h.URL) > MaxURLBytes {
		return fmt.Errorf("%w: the url is %d bytes long; at most %d are kept", ErrRejected, len(h.URL), MaxURLBytes)
	}
	if len(h.Attempts) > MaxAttempts {
		return fmt.Errorf("%w: the webhook has %d attempts; at most %d are kept", ErrRejected, len(h.Attempts), MaxAttempts)
	}
	return nil
}
