// Package wire implements felix-wire v1, the framing and message encoding
// spoken by Felix brokers and clients, byte for byte compatible with the
// reference Rust implementation.
//
// A frame is a 12-byte big-endian header followed by a payload:
//
//	offset 0  u32 magic   = 0x464C5831 ("FLX1")
//	offset 4  u16 version = 1
//	offset 6  u16 flags
//	offset 8  u32 length  (payload bytes)
//	offset 12 payload[length]
//
// Flags 0 means the payload is a UTF-8 JSON message (see [Message]); other
// flag values select binary layouts (publish batches, publish acks, event
// batches), see binary.go. The package is a pure codec: it does no I/O beyond
// the io.Reader/io.Writer handed to [Reader] and [Writer], and it never
// allocates memory proportional to an untrusted length before validating it.
//
// Decoders return sub-slices of their input where they can (binary payloads),
// so callers that reuse buffers must copy what they keep.
package wire
