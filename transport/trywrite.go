package transport

// MaxTryWriteBytes is the largest write TryWrite queues without blocking,
// about one QUIC packet's payload.
//
// quic-go's SendStream.TryWriteAll copies the bytes into the stream's
// pending-frame buffer, and that buffer is regrown, copying everything
// still unsent, whenever a write does not fit. With a large flow-control
// window and a fast writer the backlog reaches megabytes and the copying
// dominates: 17 % of a publisher's CPU in a profile of batched publishes.
// A blocking Write hands quic-go the caller's slice instead, which the
// packer reads in place. Small writes keep the non-blocking path, which
// saves a goroutine hand-off per write when nothing is queued.
const MaxTryWriteBytes = 1200

// TryWrite queues b on a QUIC stream without blocking when b is at most
// MaxTryWriteBytes and flow control allows all of it; otherwise it queues
// nothing and reports false, and the caller writes b with a blocking Write.
func TryWrite(str interface{ TryWriteAll([]byte) error }, b []byte) bool {
	return len(b) <= MaxTryWriteBytes && str.TryWriteAll(b) == nil
}
