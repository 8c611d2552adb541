// Package service routes request/reply calls (NATS request/reply with
// queue groups) between requesters and the responders that serve a
// service. It is transport-free: the server binds Responders and Sinks to
// QUIC streams; tests drive a Registry with fake ones and a fake clock.
//
// # Semantics
//
//   - Routing. A service is named by a Key (tenant, namespace, service);
//     it needs no declaration: it exists while a responder serves it.
//     Requests go round-robin to the responders of their key that have
//     room: a responder holds at most its bound (Serve's maxInFlight,
//     capped by Options.MaxInFlight) of requests sent and not answered;
//     one at its bound is skipped. With none serving, or all at their
//     bound, a request fails at once with CodeNoResponders.
//   - At most once. A request is sent to one responder, once; nothing is
//     stored or retried.
//   - Results. Each accepted request gets exactly one result on its
//     requester's Sink: the responder's reply, its error
//     (CodeResponderError), CodeTimeout when no answer came before the
//     deadline, or CodeResponderGone when the responder went away
//     (Serving.Close) with the request in flight.
//   - Late answers. A timed-out request (or one whose requester went
//     away) still holds its place at the responder until the responder
//     answers or goes away, so the bound is what the responder really
//     holds; that answer is dropped and counted (Stats.LateReplies).
//   - Bounds. A Requester holds at most Options.MaxPending requests,
//     from Request until its result is Released (so results not yet
//     written to a slow requester count); one more fails with CodeLimit.
//   - Per-service counters. Each service has its own counters (Counts)
//     beside the registry's (Stats); Services reads them with the
//     responders and requests in flight of every service. A service is
//     kept while a responder serves it; after its last responder left
//     (or when nobody ever served it and a request found no responders)
//     it is kept only while it has something to show (a counter above 0),
//     for its counters, and at most Options.MaxIdleServices of those,
//     the least recently used dropped first. So the registry holds at
//     most one entry per responder's service plus that bound, whatever
//     names requesters make up. Every request sent to a responder ends
//     in exactly one of Replies, ResponderErrors, Timeouts, ResponderGone
//     and Abandoned (its requester went away first), so Requests is their
//     sum plus the requests still awaiting a result. (InFlight counts the
//     places responders hold, which timed-out and abandoned requests keep
//     until answered: it can be above that remainder.)
//   - Time. Deadlines use Options.Now. Timeouts happen when the owner
//     calls Expire (RunTimers does, at each deadline; tests call it with a
//     fake time). No goroutine per request.
//
// Responder.Send and Sink.Result are called without the registry's lock
// held and must not block.
package service

import (
	"cmp"
	"container/heap"
	"container/list"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Key names a service.
type Key struct{ Tenant, Namespace, Service string }

func (k Key) String() string { return k.Tenant + "/" + k.Namespace + "/" + k.Service }

// Compare orders keys by tenant, namespace, then service.
func (k Key) Compare(o Key) int {
	return cmp.Or(cmp.Compare(k.Tenant, o.Tenant), cmp.Compare(k.Namespace, o.Namespace), cmp.Compare(k.Service, o.Service))
}

// Result codes (the wire's request_error codes).
const (
	CodeNoResponders   = "no_responders"
	CodeTimeout        = "timeout"
	CodeResponderGone  = "responder_gone"
	CodeResponderError = "responder_error"
	CodeLimit          = "limit"
)

// Result is the outcome of a request: a reply (Code empty) or a failure.
type Result struct {
	Payload []byte
	Code    string
	Message string
}

// Error is an immediate refusal of Request.
type Error struct{ Code, Message string }

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Responder is the transport side of a serving responder.
type Responder interface {
	// Send hands request id to the responder. It must not block; false
	// means it could not (the responder is gone), and the request fails
	// with CodeResponderGone.
	Send(id uint64, payload []byte) bool
}

// Sink receives the results of a Requester's requests, by the
// requester's own request id. It must not block.
type Sink interface {
	Result(reqID uint64, r Result)
}

// Options configure a Registry. The zero value is usable.
type Options struct {
	// MaxPending bounds a Requester's requests from Request until
	// Release. Default 1024.
	MaxPending int
	// MaxInFlight is the default and the cap of a responder's bound of
	// requests in flight. Default 64.
	MaxInFlight int
	// DefaultTimeout is a request's timeout when it gives none (0).
	// Default 5s. MaxTimeout caps timeouts; default 60s.
	DefaultTimeout, MaxTimeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// MaxIdleServices bounds the services kept with no responder, for
	// their counters (see the package doc); the least recently used
	// goes first. Default 1000; negative: none is kept (a service's
	// counters go with its last responder).
	MaxIdleServices int
}

func (o Options) withDefaults() Options {
	o.MaxPending = cmp.Or(max(o.MaxPending, 0), 1024)
	o.MaxInFlight = cmp.Or(max(o.MaxInFlight, 0), 64)
	o.DefaultTimeout = cmp.Or(max(o.DefaultTimeout, 0), 5*time.Second)
	o.MaxTimeout = cmp.Or(max(o.MaxTimeout, 0), 60*time.Second)
	o.MaxIdleServices = max(cmp.Or(o.MaxIdleServices, 1000), 0)
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Stats are a registry's cumulative counters.
type Stats struct {
	Requests        uint64 // accepted and sent to a responder
	Replies         uint64 // replies passed to requesters
	ResponderErrors uint64 // service errors passed to requesters
	NoResponders    uint64 // refused: nobody serving with room
	Limited         uint64 // refused: the requester's MaxPending
	Timeouts        uint64
	ResponderGone   uint64
	Abandoned       uint64 // their requester went away first: no result sent
	LateReplies     uint64 // answers after the timeout or requester: dropped
	UnknownReplies  uint64 // answers to ids not in flight at that responder: dropped
	Responders      int    // gauge: serving now
}

// Counts are one service's cumulative counters: the results of the
// requests to it, as in Stats.
type Counts struct {
	Requests        uint64 // accepted and sent to a responder
	Replies         uint64
	ResponderErrors uint64
	NoResponders    uint64 // refused: nobody serving with room
	Timeouts        uint64
	ResponderGone   uint64
	Abandoned       uint64 // their requester went away first
}

// Info is one service at one moment.
type Info struct {
	Key
	Responders int // serving now
	// InFlight is how many requests its responders hold now: sent and
	// not answered, timed-out ones included (they hold a place until the
	// responder answers, see the package doc).
	InFlight int
	Counts
}

// Registry maps services to their responders. It is safe for concurrent
// use.
type Registry struct {
	opts Options
	wake chan struct{} // capacity 1: the earliest deadline changed

	mu       sync.Mutex
	services map[Key]*group
	idle     list.List // of *group: no responder, kept for counts; least recently used first
	nextID   uint64
	timers   deadlines
	stats    Stats
	pending  int // sum of the open requesters' pending
}

// group is a service: its responders and counters. It stays in services
// while it has a responder; then, while its counts are not all 0, as an
// idle entry (see retire).
type group struct {
	key    Key
	list   []*Serving
	next   int           // round-robin cursor
	counts Counts        // under Registry.mu, which every counted event holds
	idle   *list.Element // in Registry.idle while list is empty, else nil
}

// remove takes s out of g's responders, keeping the round-robin cursor
// on the responder that was next: one before the cursor leaving shifts
// those after it down by one, and the cursor with them, or the
// responder after the one that left would be skipped (and a responder
// leaving and serving again after each request would starve the others).
// Called with Registry.mu held.
func (g *group) remove(s *Serving) {
	i := slices.Index(g.list, s)
	if i < 0 {
		return
	}
	g.list = slices.Delete(g.list, i, i+1)
	if i < g.next {
		g.next--
	}
}

// call is one request in flight.
type call struct {
	id       uint64 // the registry's, as sent to the responder
	reqID    uint64 // the requester's
	from     *Requester
	to       *Serving
	deadline time.Time
	index    int  // in the timer heap; -1 when not in it
	answered bool // the requester got its result (or went away)
}

// New returns an empty registry.
func New(o Options) *Registry {
	return &Registry{opts: o.withDefaults(), wake: make(chan struct{}, 1), services: map[Key]*group{}}
}

// Services returns every service the registry holds (served now, or
// kept for its counters), sorted by key.
func (r *Registry) Services() []Info {
	r.mu.Lock()
	out := make([]Info, 0, len(r.services))
	for _, g := range r.services {
		in := Info{Key: g.key, Responders: len(g.list), Counts: g.counts}
		for _, s := range g.list {
			in.InFlight += len(s.inflight)
		}
		out = append(out, in)
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b Info) int { return a.Key.Compare(b.Key) })
	return out
}

// retire keeps g, which has just lost its last responder or been made for
// a refused request, as an idle entry if it has counts to show, within
// Options.MaxIdleServices, and forgets it otherwise. Called with r.mu
// held.
func (r *Registry) retire(g *group) {
	if g.counts == (Counts{}) || r.opts.MaxIdleServices == 0 {
		delete(r.services, g.key)
		return
	}
	g.idle = r.idle.PushBack(g)
	for r.idle.Len() > r.opts.MaxIdleServices {
		old := r.idle.Remove(r.idle.Front()).(*group)
		old.idle = nil
		delete(r.services, old.key)
	}
}

// refused counts a request to k that found no responder with room.
// Called with r.mu held.
func (r *Registry) refused(k Key) {
	r.stats.NoResponders++
	g := r.services[k]
	switch {
	case g == nil:
		g = &group{key: k, counts: Counts{NoResponders: 1}}
		r.services[k] = g
		r.retire(g)
	case g.idle != nil:
		g.counts.NoResponders++
		r.idle.MoveToBack(g.idle)
	default:
		g.counts.NoResponders++
	}
}

// Stats returns a snapshot of the counters.
func (r *Registry) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Responders is how many responders serve k.
func (r *Registry) Responders(k Key) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if g := r.services[k]; g != nil {
		return len(g.list)
	}
	return 0
}

// Bound is the bound of requests in flight of a responder that asks for
// maxInFlight (0: Options.MaxInFlight, which also caps it).
func (r *Registry) Bound(maxInFlight int) int {
	if maxInFlight > 0 {
		return min(maxInFlight, r.opts.MaxInFlight)
	}
	return r.opts.MaxInFlight
}

// Serving is one responder's registration.
type Serving struct {
	r        *Registry
	key      Key
	g        *group
	resp     Responder
	max      int
	inflight map[uint64]*call
	closed   bool
}

// MaxInFlight is the responder's bound.
func (s *Serving) MaxInFlight() int { return s.max }

// Serve registers resp as a responder of k, with at most maxInFlight
// requests in flight (0: Options.MaxInFlight, which also caps it).
func (r *Registry) Serve(k Key, resp Responder, maxInFlight int) *Serving {
	s := &Serving{r: r, key: k, resp: resp, max: r.Bound(maxInFlight), inflight: map[uint64]*call{}}
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.services[k]
	switch {
	case g == nil:
		g = &group{key: k}
		r.services[k] = g
	case g.idle != nil:
		r.idle.Remove(g.idle)
		g.idle = nil
	}
	g.list = append(g.list, s)
	s.g = g
	r.stats.Responders++
	return s
}

// Reply answers request id with payload.
func (s *Serving) Reply(id uint64, payload []byte) {
	s.answer(id, Result{Payload: payload})
}

// Fail answers request id with the responder's error message.
func (s *Serving) Fail(id uint64, msg string) {
	s.answer(id, Result{Code: CodeResponderError, Message: msg})
}

func (s *Serving) answer(id uint64, res Result) {
	r := s.r
	r.mu.Lock()
	c := s.inflight[id]
	switch {
	case c == nil:
		r.stats.UnknownReplies++
		r.mu.Unlock()
		return
	case c.answered:
		delete(s.inflight, id)
		r.stats.LateReplies++
		r.mu.Unlock()
		return
	}
	delete(s.inflight, id)
	r.settle(c)
	if res.Code == "" {
		r.stats.Replies++
		s.g.counts.Replies++
	} else {
		r.stats.ResponderErrors++
		s.g.counts.ResponderErrors++
	}
	r.mu.Unlock()
	c.from.sink.Result(c.reqID, res)
}

// settle marks c answered and stops its timer. Called with r.mu held.
func (r *Registry) settle(c *call) {
	c.answered = true
	if c.index >= 0 {
		heap.Remove(&r.timers, c.index)
	}
	delete(c.from.calls, c)
}

// Close ends the registration: the requests in flight to it fail with
// CodeResponderGone. It may be called more than once.
func (s *Serving) Close() {
	r := s.r
	r.mu.Lock()
	if s.closed {
		r.mu.Unlock()
		return
	}
	s.closed = true
	r.stats.Responders--
	var gone []*call
	for id, c := range s.inflight {
		delete(s.inflight, id)
		if !c.answered {
			r.settle(c)
			gone = append(gone, c)
		}
	}
	r.stats.ResponderGone += uint64(len(gone))
	g := s.g
	g.counts.ResponderGone += uint64(len(gone))
	g.remove(s)
	if len(g.list) == 0 {
		r.retire(g)
	}
	r.mu.Unlock()
	for _, c := range gone {
		c.from.sink.Result(c.reqID, Result{Code: CodeResponderGone,
			Message: fmt.Sprintf("the responder of %s went away with the request in flight", s.key)})
	}
}

// Requester is one requester's registration (a connection, say): its
// requests, their bound and where their results go.
type Requester struct {
	r       *Registry
	sink    Sink
	pending int // accepted and not released
	calls   map[*call]struct{}
	closed  bool
}

// NewRequester registers a requester whose results go to sink.
func (r *Registry) NewRequester(sink Sink) *Requester {
	return &Requester{r: r, sink: sink, calls: map[*call]struct{}{}}
}

// Request sends payload to a responder of k, to be answered on the sink
// under reqID within timeout (0: the default; capped). A refusal is an
// *Error (CodeNoResponders, CodeLimit) and nothing reaches the sink.
func (q *Requester) Request(reqID uint64, k Key, payload []byte, timeout time.Duration) error {
	r := q.r
	if timeout <= 0 {
		timeout = r.opts.DefaultTimeout
	}
	timeout = min(timeout, r.opts.MaxTimeout)
	r.mu.Lock()
	if q.closed {
		// The connection is going away (its answer may never be read):
		// refused, but no MaxPending refusal (Stats.Limited).
		r.mu.Unlock()
		return &Error{Code: CodeLimit, Message: "requests refused: the connection's requester is closed"}
	}
	if q.pending >= r.opts.MaxPending {
		r.stats.Limited++
		r.mu.Unlock()
		return &Error{Code: CodeLimit, Message: fmt.Sprintf("too many requests pending on this connection (%d)", r.opts.MaxPending)}
	}
	to := r.pick(k)
	if to == nil {
		r.refused(k)
		r.mu.Unlock()
		return &Error{Code: CodeNoResponders, Message: "no responders for " + k.String()}
	}
	r.nextID++
	c := &call{id: r.nextID, reqID: reqID, from: q, to: to, deadline: r.opts.Now().Add(timeout)}
	to.inflight[c.id] = c
	q.calls[c] = struct{}{}
	q.pending++
	r.pending++
	heap.Push(&r.timers, c)
	r.stats.Requests++
	to.g.counts.Requests++
	first := c.index == 0
	r.mu.Unlock()
	if first {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
	if !to.resp.Send(c.id, payload) {
		to.Close() // fails c (and the others in flight to it) with CodeResponderGone
	}
	return nil
}

// pick returns the next responder of k with room, round-robin. Called
// with r.mu held.
func (r *Registry) pick(k Key) *Serving {
	g := r.services[k]
	if g == nil {
		return nil
	}
	n := len(g.list)
	for i := range n {
		s := g.list[(g.next+i)%n]
		if len(s.inflight) < s.max {
			g.next = (g.next + i + 1) % n
			return s
		}
	}
	return nil
}

// Release gives back the places of n results the requester's transport
// has delivered (or dropped), for further requests.
func (q *Requester) Release(n int) {
	q.r.mu.Lock()
	n = min(max(n, 0), q.pending)
	q.pending -= n
	q.r.pending -= n
	q.r.mu.Unlock()
}

// Pending is how many requests of open requesters hold a place: accepted
// and their result not yet handed to the requester's transport. A broker
// shutting down waits for it to reach 0.
func (r *Registry) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pending
}

// Pending is how many of the requester's requests hold a place.
func (q *Requester) Pending() int {
	q.r.mu.Lock()
	defer q.r.mu.Unlock()
	return q.pending
}

// Full reports whether q holds Options.MaxPending requests, so that its
// next Request would be refused (CodeLimit, counted in Stats.Limited): a
// caller that can wait for places to free (the server, while results of
// the request's own stream are being written) checks first rather than
// being refused and counted.
func (q *Requester) Full() bool {
	q.r.mu.Lock()
	defer q.r.mu.Unlock()
	return q.pending >= q.r.opts.MaxPending
}

// Close ends the requester: its requests get no result; their responders
// keep them in flight until they answer (the answer is dropped).
func (q *Requester) Close() {
	r := q.r
	r.mu.Lock()
	defer r.mu.Unlock()
	q.closed = true
	r.pending -= q.pending
	q.pending = 0
	for c := range q.calls {
		r.settle(c)
		r.stats.Abandoned++
		c.to.g.counts.Abandoned++
	}
}

// Expire fails the requests whose deadline is at or before now with
// CodeTimeout.
func (r *Registry) Expire(now time.Time) {
	r.mu.Lock()
	var due []*call
	for len(r.timers) > 0 && !r.timers[0].deadline.After(now) {
		c := r.timers[0]
		r.settle(c)
		c.to.g.counts.Timeouts++
		due = append(due, c)
	}
	r.stats.Timeouts += uint64(len(due))
	r.mu.Unlock()
	for _, c := range due {
		c.from.sink.Result(c.reqID, Result{Code: CodeTimeout,
			Message: fmt.Sprintf("no reply from %s within the timeout", c.to.key)})
	}
}

// NextDeadline is the earliest deadline of a request in flight.
func (r *Registry) NextDeadline() (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.timers) == 0 {
		return time.Time{}, false
	}
	return r.timers[0].deadline, true
}

// RunTimers calls Expire at each deadline, on a real timer, until ctx
// ends. Run it once per registry.
func (r *Registry) RunTimers(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		r.Expire(r.opts.Now())
		wait := time.Hour
		if d, ok := r.NextDeadline(); ok {
			wait = max(d.Sub(r.opts.Now()), 0)
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.wake:
		}
	}
}

// deadlines is a min-heap of calls by deadline.
type deadlines []*call

func (h deadlines) Len() int           { return len(h) }
func (h deadlines) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h deadlines) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *deadlines) Push(x any) {
	c := x.(*call)
	c.index = len(*h)
	*h = append(*h, c)
}
func (h *deadlines) Pop() any {
	old := *h
	c := old[len(old)-1]
	old[len(old)-1] = nil
	c.index = -1
	*h = old[:len(old)-1]
	return c
}
