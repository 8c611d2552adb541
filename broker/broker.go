package broker

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/time/rate"
)

// Broker is the engine: a registry of tenants → namespaces → streams. It is
// safe for concurrent use. There are no package-level singletons; tests and
// embedders may run several brokers in one process.
type Broker struct {
	opts      Options
	mu        sync.RWMutex
	tenants   map[string]map[string]map[string]*Stream // tenant → ns → stream
	closed    bool
	nstreams  int // streams in tenants
	nextSubID atomic.Uint64

	// autoRefused counts streams the auto-create bound refused;
	// refusalLogs spaces the lines that log them (see refuseAutoCreate).
	autoRefused atomic.Uint64
	refusalLogs *rate.Limiter
}

// New returns an empty broker.
func New(opts Options) *Broker {
	return &Broker{opts: opts.withDefaults(), tenants: map[string]map[string]map[string]*Stream{},
		refusalLogs: rate.NewLimiter(rate.Every(refusalLogEvery), 1)}
}

// Options returns the effective options (defaults applied).
func (b *Broker) Options() Options { return b.opts }

// NextSubscriptionID returns a fresh broker-wide subscription id, from 1.
func (b *Broker) NextSubscriptionID() uint64 { return b.nextSubID.Add(1) }

// ValidateName checks a tenant, namespace, stream, cache or queue group
// name (kind says which, for the error): non-empty UTF-8, at most 255
// bytes, and none of '/' (the path separator), ':' (the permission
// separator), '*' (the permission wildcard), whitespace (unicode.IsSpace)
// or control characters (unicode.IsControl). Every valid name can thus be
// granted exactly by an RBAC permission (see package auth), and a grant
// naming one never turns into a wildcard. A refusal wraps ErrInvalidName
// and names the kind, the name and the offending character.
func ValidateName(kind, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty %s", ErrInvalidName, kind)
	case len(s) > 255:
		return fmt.Errorf("%w: %s longer than 255 bytes", ErrInvalidName, kind)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s is not UTF-8", ErrInvalidName, kind)
	}
	for i, c := range s {
		var what string
		switch {
		case c == '/':
			what = "'/' (the path separator)"
		case c == ':':
			what = "':' (the permission separator)"
		case c == '*':
			what = "'*' (the permission wildcard)"
		case unicode.IsControl(c):
			what = fmt.Sprintf("control character %U", c)
		case unicode.IsSpace(c):
			what = fmt.Sprintf("whitespace %U", c)
		default:
			continue
		}
		return fmt.Errorf("%w: %s %q contains %s at byte %d", ErrInvalidName, kind, s, what, i)
	}
	return nil
}

// CreateTenant declares a tenant; it is a no-op if it exists.
func (b *Broker) CreateTenant(tenant string) error {
	if err := ValidateName("tenant", tenant); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	if b.tenants[tenant] == nil {
		b.tenants[tenant] = map[string]map[string]*Stream{}
	}
	return nil
}

// CreateNamespace declares a namespace of an existing tenant; no-op if it
// exists.
func (b *Broker) CreateNamespace(tenant, ns string) error {
	if err := ValidateName("namespace", ns); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	t := b.tenants[tenant]
	if t == nil {
		return fmt.Errorf("create namespace %s/%s: %w", tenant, ns, ErrTenantNotFound)
	}
	if t[ns] == nil {
		t[ns] = map[string]*Stream{}
	}
	return nil
}

// CreateStream declares a stream in an existing namespace and returns it;
// if it exists, the existing stream is returned.
func (b *Broker) CreateStream(tenant, ns, name string) (*Stream, error) {
	if err := ValidateName("stream", name); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.createStreamLocked(StreamKey{tenant, ns, name}, StreamOptions{})
}

func (b *Broker) createStreamLocked(k StreamKey, o StreamOptions) (*Stream, error) {
	if b.closed {
		return nil, ErrClosed
	}
	t := b.tenants[k.Tenant]
	if t == nil {
		return nil, fmt.Errorf("create stream %s: %w", k, ErrTenantNotFound)
	}
	n := t[k.Namespace]
	if n == nil {
		return nil, fmt.Errorf("create stream %s: %w", k, ErrNamespaceNotFound)
	}
	if s := n[k.Stream]; s != nil {
		if o.Log != nil {
			return nil, fmt.Errorf("create stream %s: %w", k, ErrStreamExists)
		}
		return s, nil
	}
	s := newStream(b, k, o)
	n[k.Stream] = s
	b.nstreams++
	return s, nil
}

// DeclareStream creates the tenant, namespace and stream as needed.
func (b *Broker) DeclareStream(tenant, ns, name string) (*Stream, error) {
	if err := b.CreateTenant(tenant); err != nil {
		return nil, err
	}
	if err := b.CreateNamespace(tenant, ns); err != nil {
		return nil, err
	}
	return b.CreateStream(tenant, ns, name)
}

// DeclareLoggedStream creates the tenant and namespace as needed and a new
// stream backed by o.Log. It fails with ErrStreamExists if the stream
// exists (a log-backed stream cannot replace a live one). On failure the
// caller still owns o.Log.
func (b *Broker) DeclareLoggedStream(tenant, ns, name string, o StreamOptions) (*Stream, error) {
	if o.Log == nil {
		return nil, errors.New("DeclareLoggedStream: StreamOptions.Log is nil")
	}
	if err := ValidateName("stream", name); err != nil {
		return nil, err
	}
	if err := b.CreateTenant(tenant); err != nil {
		return nil, err
	}
	if err := b.CreateNamespace(tenant, ns); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.createStreamLocked(StreamKey{tenant, ns, name}, o)
}

// logCloseErr reports a log that failed to close cleanly.
func (b *Broker) logCloseErr(k StreamKey, err error) {
	if b.opts.Logger != nil {
		b.opts.Logger.Error("closing stream log", "stream", k.String(), "err", err)
	}
}

// refusalLogEvery is how often at most a refusal by the auto-create bound
// is logged.
const refusalLogEvery = 10 * time.Second

// refuseAutoCreate counts a stream the auto-create bound refused and logs
// it: the first at once, then at most once every refusalLogEvery of
// Options.Clock, with the count so far.
func (b *Broker) refuseAutoCreate(k StreamKey, limit int) {
	n := b.autoRefused.Add(1)
	if b.opts.Logger == nil || !b.refusalLogs.AllowN(b.opts.Clock(), 1) {
		return
	}
	b.opts.Logger.Warn("stream not auto-created: too many streams", "stream", k.String(), "limit", limit, "refused_total", n)
}

// AutoCreateRefused returns how many streams the auto-create bound
// (Options.MaxAutoCreatedStreams) has refused since the broker started:
// uses of a new name (publishes, subscriptions) turned away with
// ErrTooManyStreams.
func (b *Broker) AutoCreateRefused() uint64 { return b.autoRefused.Load() }

// Stream looks a stream up. With AutoCreateStreams an unknown stream (and
// its tenant and namespace) is created; otherwise a *NotFoundError is
// returned.
func (b *Broker) Stream(tenant, ns, name string) (*Stream, error) {
	b.mu.RLock()
	s := b.tenants[tenant][ns][name]
	closed := b.closed
	b.mu.RUnlock()
	if s != nil {
		return s, nil
	}
	if closed {
		return nil, ErrClosed
	}
	k := StreamKey{tenant, ns, name}
	if !b.opts.AutoCreateStreams {
		return nil, &NotFoundError{Key: k}
	}
	if err := ValidateName("tenant", tenant); err != nil {
		return nil, err
	}
	if err := ValidateName("namespace", ns); err != nil {
		return nil, err
	}
	if err := ValidateName("stream", name); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	if s := b.tenants[tenant][ns][name]; s != nil {
		return s, nil // created meanwhile
	}
	if max := b.opts.MaxAutoCreatedStreams; max > 0 && b.nstreams >= max {
		b.refuseAutoCreate(k, max)
		return nil, fmt.Errorf("auto-create stream %s: %w (limit %d)", k, ErrTooManyStreams, max)
	}
	if b.tenants[tenant] == nil {
		b.tenants[tenant] = map[string]map[string]*Stream{}
	}
	if b.tenants[tenant][ns] == nil {
		b.tenants[tenant][ns] = map[string]*Stream{}
	}
	return b.createStreamLocked(k, StreamOptions{})
}

// LookupStream looks a stream up without creating it, even with
// AutoCreateStreams: an unknown stream is a *NotFoundError.
func (b *Broker) LookupStream(tenant, ns, name string) (*Stream, error) {
	b.mu.RLock()
	s := b.tenants[tenant][ns][name]
	closed := b.closed
	b.mu.RUnlock()
	switch {
	case s != nil:
		return s, nil
	case closed:
		return nil, ErrClosed
	}
	return nil, &NotFoundError{Key: StreamKey{tenant, ns, name}}
}

// DeleteStream removes a stream. Its subscriptions end after their queued
// frames are delivered; later publishes through a held *Stream fail with
// ErrStreamDeleted.
func (b *Broker) DeleteStream(tenant, ns, name string) error {
	b.mu.Lock()
	s := b.tenants[tenant][ns][name]
	if s != nil {
		delete(b.tenants[tenant][ns], name)
		b.nstreams--
	}
	b.mu.Unlock()
	if s == nil {
		return &NotFoundError{Key: StreamKey{tenant, ns, name}}
	}
	s.shutdown(ErrStreamDeleted)
	return nil
}

// Streams returns every stream, in no particular order.
func (b *Broker) Streams() []*Stream {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var out []*Stream
	for _, t := range b.tenants {
		for _, n := range t {
			for _, s := range n {
				out = append(out, s)
			}
		}
	}
	return out
}

// Close ends every subscription (after its queued frames) and refuses new
// work. It is idempotent.
func (b *Broker) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	b.mu.Unlock()
	for _, s := range b.Streams() {
		s.shutdown(ErrClosed)
	}
}

// Stats is a point-in-time view of the broker.
type Stats struct {
	Streams []StreamStats
}

// Stats returns counters for every stream and subscription.
func (b *Broker) Stats() Stats {
	var st Stats
	for _, s := range b.Streams() {
		st.Streams = append(st.Streams, s.Stats())
	}
	return st
}
