package wire

// Request/reply services (extension, capability CapRequest; NATS
// request/reply with queue groups). A responder turns a client-opened
// stream into a service endpoint with Serve; the broker answers Serving,
// then writes ServiceRequest messages on that stream and reads
// ServiceReply or ServiceError for each. A requester sends Request on a
// client-opened stream (several may be outstanding) and gets Reply or
// RequestError for each, matched by request id.

// Serve makes the stream a responder of Service in TenantID/Namespace.
// MaxInFlight bounds the requests sent to it and not yet answered (nil:
// the broker's default, 64; the broker also caps it at that default).
type Serve struct {
	TenantID, Namespace, Service string
	MaxInFlight                  *uint64
}

// Serving answers Serve: requests follow on the stream.
type Serving struct{}

// ServiceRequest is one request, broker to responder. RequestID is the
// broker's (unique on the stream), not the requester's.
type ServiceRequest struct {
	RequestID uint64
	Payload   []byte
}

// ServiceReply answers a ServiceRequest, responder to broker.
type ServiceReply struct {
	RequestID uint64
	Payload   []byte
}

// ServiceError fails a ServiceRequest, responder to broker; the requester
// gets RequestError code RequestCodeResponderError with Message.
type ServiceError struct {
	RequestID uint64
	Message   string
}

// Request asks Service in TenantID/Namespace, requester to broker.
// TimeoutMs nil means the broker's default (5000); it is capped at
// MaxRequestTimeoutMs.
type Request struct {
	RequestID                    uint64
	TenantID, Namespace, Service string
	Payload                      []byte
	TimeoutMs                    *uint64
}

// Reply answers a Request with the responder's payload.
type Reply struct {
	RequestID uint64
	Payload   []byte
}

// RequestError fails a Request. Code is one of the RequestCode constants.
type RequestError struct {
	RequestID     uint64
	Code, Message string
}

// The codes of request_error.
const (
	// RequestCodeNoResponders: no responder serves the service, or every
	// one has its bound of requests in flight. Answered at once.
	RequestCodeNoResponders = "no_responders"
	// RequestCodeTimeout: no answer within the request's timeout.
	RequestCodeTimeout = "timeout"
	// RequestCodeResponderGone: the responder's stream or connection
	// ended with the request in flight (it may or may not have run).
	RequestCodeResponderGone = "responder_gone"
	// RequestCodeResponderError: the responder answered service_error;
	// the message is its own.
	RequestCodeResponderError = "responder_error"
	// RequestCodeForbidden: the identity may not publish to the service.
	RequestCodeForbidden = "forbidden"
	// RequestCodeTooLarge: the request or its reply does not fit a frame.
	RequestCodeTooLarge = "too_large"
	// RequestCodeLimit: the connection has its bound of requests pending.
	RequestCodeLimit = "limit"
	// RequestCodeInvalid: a bad service name or namespace.
	RequestCodeInvalid = "invalid"
)

// Request timeouts and responder bounds.
const (
	DefaultRequestTimeoutMs = 5000
	MaxRequestTimeoutMs     = 60000
	DefaultMaxInFlight      = 64
)

func (*Serve) Type() MsgType          { return TypeServe }
func (*Serving) Type() MsgType        { return TypeServing }
func (*ServiceRequest) Type() MsgType { return TypeServiceRequest }
func (*ServiceReply) Type() MsgType   { return TypeServiceReply }
func (*ServiceError) Type() MsgType   { return TypeServiceError }
func (*Request) Type() MsgType        { return TypeRequest }
func (*Reply) Type() MsgType          { return TypeReply }
func (*RequestError) Type() MsgType   { return TypeRequestError }

func (m *Serve) appendFields(e *encoder) {
	e.str("tenant_id", m.TenantID)
	e.str("namespace", m.Namespace)
	e.str("service", m.Service)
	e.optU64("max_in_flight", m.MaxInFlight)
}

func (*Serving) appendFields(*encoder) {}

func (m *ServiceRequest) appendFields(e *encoder) { e.idPayload(m.RequestID, m.Payload) }
func (m *ServiceReply) appendFields(e *encoder)   { e.idPayload(m.RequestID, m.Payload) }
func (m *Reply) appendFields(e *encoder)          { e.idPayload(m.RequestID, m.Payload) }

func (e *encoder) idPayload(id uint64, payload []byte) {
	e.u64("request_id", id)
	e.b64("payload", payload)
}

func (m *ServiceError) appendFields(e *encoder) {
	e.u64("request_id", m.RequestID)
	e.str("message", m.Message)
}

func (m *Request) appendFields(e *encoder) {
	e.u64("request_id", m.RequestID)
	e.str("tenant_id", m.TenantID)
	e.str("namespace", m.Namespace)
	e.str("service", m.Service)
	e.b64("payload", m.Payload)
	e.optU64("timeout_ms", m.TimeoutMs)
}

func (m *RequestError) appendFields(e *encoder) {
	e.u64("request_id", m.RequestID)
	e.str("code", m.Code)
	e.str("message", m.Message)
}

func init() {
	idPayload := bit(fRequestID, fPayload)
	specs[TypeServe] = msgSpec{allowed: bit(fTenantID, fNamespace, fService, fMaxInFlight),
		required: bit(fTenantID, fNamespace, fService),
		build: func(f *fields) Message {
			return &Serve{TenantID: f.str[fTenantID], Namespace: f.str[fNamespace], Service: f.str[fService],
				MaxInFlight: f.optU64(fMaxInFlight)}
		}}
	specs[TypeServing] = msgSpec{build: func(*fields) Message { return &Serving{} }}
	specs[TypeServiceRequest] = msgSpec{allowed: idPayload, required: idPayload,
		build: func(f *fields) Message { return &ServiceRequest{RequestID: f.num[fRequestID], Payload: f.payload} }}
	specs[TypeServiceReply] = msgSpec{allowed: idPayload, required: idPayload,
		build: func(f *fields) Message { return &ServiceReply{RequestID: f.num[fRequestID], Payload: f.payload} }}
	specs[TypeReply] = msgSpec{allowed: idPayload, required: idPayload,
		build: func(f *fields) Message { return &Reply{RequestID: f.num[fRequestID], Payload: f.payload} }}
	specs[TypeServiceError] = msgSpec{allowed: bit(fRequestID, fMessage), required: bit(fRequestID, fMessage),
		build: func(f *fields) Message { return &ServiceError{RequestID: f.num[fRequestID], Message: f.str[fMessage]} }}
	req := bit(fRequestID, fTenantID, fNamespace, fService, fPayload)
	specs[TypeRequest] = msgSpec{allowed: req | bit(fTimeoutMs), required: req,
		build: func(f *fields) Message {
			return &Request{RequestID: f.num[fRequestID], TenantID: f.str[fTenantID], Namespace: f.str[fNamespace],
				Service: f.str[fService], Payload: f.payload, TimeoutMs: f.optU64(fTimeoutMs)}
		}}
	specs[TypeRequestError] = msgSpec{allowed: bit(fRequestID, fCode, fMessage), required: bit(fRequestID, fCode, fMessage),
		build: func(f *fields) Message {
			return &RequestError{RequestID: f.num[fRequestID], Code: f.str[fCode], Message: f.str[fMessage]}
		}}
}
