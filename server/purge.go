package server

import (
	"errors"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/wire"
)

// streamPurge removes every event a stream holds (extension CapPurge). It
// needs stream.manage on the stream, as deleting a consumer group does;
// it never creates a stream, even under auto-create.
func (ctl *control) streamPurge(m *wire.StreamPurge) error {
	if ctl.peer&wire.CapPurge == 0 {
		return errNotNegotiated(m.Type())
	}
	if m.TenantID != ctl.id.Tenant {
		return ctl.fail("tenant mismatch")
	}
	fail := func(code, msg string) error {
		return ctl.reply(&wire.StreamError{RequestID: m.RequestID, Code: code, Message: msg})
	}
	if !ctl.authorize(auth.ActionStreamManage, StreamResource(m.TenantID, m.Namespace, m.Stream)) {
		return fail(wire.StreamCodeForbidden, "forbidden")
	}
	st, err := ctl.c.s.opts.Broker.LookupStream(m.TenantID, m.Namespace, m.Stream)
	if err != nil {
		return fail(purgeCode(err), err.Error())
	}
	res, err := st.Purge()
	if err != nil {
		return fail(purgeCode(err), err.Error())
	}
	ctl.c.s.opts.Logger.Info("stream purged", "stream", st.Key().String(), "purged", res.Purged, "offset", res.Offset,
		"subject", ctl.id.Subject)
	return ctl.reply(&wire.StreamPurged{RequestID: m.RequestID, Purged: res.Purged, Offset: res.Offset})
}

// purgeCode is the stream_error code of a purge that failed with err.
func purgeCode(err error) string {
	switch {
	case errors.Is(err, broker.ErrStreamNotFound), errors.Is(err, broker.ErrStreamDeleted):
		return wire.StreamCodeNotFound
	case errors.Is(err, broker.ErrInvalidName):
		return wire.StreamCodeInvalid
	case errors.Is(err, broker.ErrClosed):
		return wire.StreamCodeUnavailable
	}
	return wire.StreamCodeStorage
}
