package wire

// DeadLetter is the payload of an event on a dead-letter stream
// (`<stream>.dlq`): a record that a consumer group gave up on, and why. It
// is JSON, encoded and decoded with encoding/json; Payload travels as
// standard base64 with padding, as encoding/json writes a []byte:
//
//	{"stream":"jobs","group":"g","offset":7,"attempts":3,"reason":"…","payload":"cG9pc29u"}
type DeadLetter struct {
	Stream   string `json:"stream"`
	Group    string `json:"group"`
	Offset   uint64 `json:"offset"`
	Attempts int    `json:"attempts"`
	Reason   string `json:"reason"`
	Payload  []byte `json:"payload"`
}
