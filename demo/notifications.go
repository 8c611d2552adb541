package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/transport"
)

// The notifications demo's names and sizes.
const (
	alertsNS     = "ops"
	alertsStream = "alerts"
	recentCache  = "recent"
	recentKey    = "last-alerts"
	// keepRecent is how many of the latest alerts each tenant keeps in its
	// cache.
	keepRecent = 5
	// alertsQueueFrames is the embedded broker's per-subscriber queue, in
	// frames (one alert each here).
	alertsQueueFrames = 128
	// pagerWindow is the stalled subscriber's QUIC receive window: once it
	// is full the broker's writer blocks and the subscriber's queue fills.
	pagerWindow = 16 << 10
)

var alertTenants = []string{"acme", "globex"}

type alert struct {
	Tenant   string `json:"tenant"`
	Seq      int    `json:"seq"`
	Severity string `json:"severity"`
	Text     string `json:"text"`
}

func newAlert(tenant string, seq int) alert {
	sev := []string{"info", "warning", "critical"}[seq%3]
	return alert{Tenant: tenant, Seq: seq, Severity: sev, Text: fmt.Sprintf("%s: disk %d%% full on db-%d", tenant, 50+seq%50, seq%7)}
}

// received is what one subscriber saw.
type received struct {
	name    string
	tenant  string
	mu      sync.Mutex
	seqs    []int
	foreign int // alerts of another tenant (must stay 0)
}

func (r *received) add(payload []byte) {
	var a alert
	r.mu.Lock()
	defer r.mu.Unlock()
	if json.Unmarshal(payload, &a) != nil || a.Tenant != r.tenant {
		r.foreign++
		return
	}
	r.seqs = append(r.seqs, a.Seq)
}

func (r *received) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seqs)
}

// inOrder reports whether the subscriber got exactly 1..n in order.
func (r *received) inOrder(n int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seqs) != n {
		return false
	}
	for i, s := range r.seqs {
		if s != i+1 {
			return false
		}
	}
	return true
}

// gaps returns the sequence numbers in 1..n the subscriber missed, as
// ranges, and how many.
func (r *received) gaps(n int) (string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var parts []string
	missed, next := 0, 1
	add := func(from, to int) {
		if from > to {
			return
		}
		missed += to - from + 1
		if from == to {
			parts = append(parts, fmt.Sprint(from))
		} else {
			parts = append(parts, fmt.Sprintf("%d–%d", from, to))
		}
	}
	for _, s := range r.seqs {
		add(next, s-1)
		next = s + 1
	}
	add(next, n)
	if missed == 0 {
		return "none", 0
	}
	return strings.Join(parts, ", "), missed
}

// readAll reads sub into r until ctx ends.
func readAll(ctx context.Context, sub *client.Subscription, r *received) {
	for {
		ev, err := sub.Next(ctx)
		if err != nil {
			return
		}
		r.add(ev.Payload)
	}
}

// runNotifications: fanout of alerts to many subscribers of two tenants.
func runNotifications(ctx context.Context, e *env) error {
	subsPerTenant, alerts := 5, 1000
	if e.opts.Quick {
		subsPerTenant, alerts = 3, 500
	}
	var n needs
	for _, t := range alertTenants {
		n.streams = append(n.streams, t+"/"+alertsNS+"/"+alertsStream)
		n.caches = append(n.caches, t+"/"+alertsNS+"/"+recentCache)
	}
	n.broker = broker.Options{QueuePolicy: broker.DropNew, QueueCapacity: alertsQueueFrames, WriteMaxBytes: pagerWindow}
	n.serveFlags = []string{"--queue-policy drop_new", fmt.Sprintf("--queue-capacity %d", alertsQueueFrames)}
	if err := e.startBroker(n); err != nil {
		return err
	}
	e.notef("Full subscriber queues drop the newest alerts (drop_new, %d frames per subscriber): a slow subscriber loses alerts, nobody waits for it.", alertsQueueFrames)

	rctx, stopReaders := context.WithCancel(ctx)
	var readers sync.WaitGroup
	defer func() { stopReaders(); readers.Wait() }()

	e.stepf("Subscribing %d dashboards per tenant to %s/%s (tenants %s).", subsPerTenant, alertsNS, alertsStream, strings.Join(alertTenants, ", "))
	fast := map[string][]*received{}
	for _, t := range alertTenants {
		c, err := e.dial(ctx, t, client.Options{EventConns: subsPerTenant})
		if err != nil {
			return err
		}
		defer c.Close()
		for i := range subsPerTenant {
			sub, err := c.Subscribe(ctx, alertsNS, alertsStream)
			if err != nil {
				return fmt.Errorf("%s: subscribe: %w", t, err)
			}
			r := &received{name: fmt.Sprintf("%s/dashboard-%d", t, i+1), tenant: t}
			fast[t] = append(fast[t], r)
			readers.Go(func() { readAll(rctx, sub, r) })
		}
		e.notef("tenant %s: %d subscriptions, each on its own QUIC connection", t, subsPerTenant)
	}

	pagerTenant := alertTenants[0]
	e.stepf("Subscribing a slow consumer, %s/pager, that stalls: it reads nothing until the burst is over.", pagerTenant)
	pc, err := e.dial(ctx, pagerTenant, client.Options{EventConns: 1, SubscriptionBuffer: 1, Transport: transport.Options{
		InitialStreamReceiveWindow: pagerWindow, MaxStreamReceiveWindow: pagerWindow,
		InitialConnectionReceiveWindow: 4 * pagerWindow, MaxConnectionReceiveWindow: 4 * pagerWindow}})
	if err != nil {
		return err
	}
	defer pc.Close()
	pagerSub, err := pc.Subscribe(ctx, alertsNS, alertsStream)
	if err != nil {
		return fmt.Errorf("pager: subscribe: %w", err)
	}
	pager := &received{name: pagerTenant + "/pager", tenant: pagerTenant}
	e.notef("its client buffers 1 event and its QUIC window is %d KiB: the broker soon cannot write to it", pagerWindow>>10)

	if err := publishAlerts(ctx, e, alerts); err != nil {
		return err
	}

	e.stepf("Checking every dashboard.")
	all := func() bool {
		for _, rs := range fast {
			for _, r := range rs {
				if r.count() < alerts {
					return false
				}
			}
		}
		return true
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_ = waitFor(wctx, 5*time.Millisecond, all) // a shortfall is reported by the claims below
	cancel()
	for _, t := range alertTenants {
		ok, foreign := 0, 0
		for _, r := range fast[t] {
			if r.inOrder(alerts) {
				ok++
			}
			foreign += r.foreign
			_, missed := r.gaps(alerts)
			e.notef("%-20s received %d/%d alerts, %d lost", r.name, r.count(), alerts, missed)
		}
		e.check(ok == len(fast[t]) && foreign == 0,
			"tenant %s: %d/%d dashboards received all %d alerts in order, 0 lost, %d from another tenant", t, ok, len(fast[t]), alerts, foreign)
	}
	e.notef("(meanwhile %s has read %d alerts: the broker delivered to everyone else without waiting for it)", pager.name, pager.count())

	if err := drainPager(ctx, e, pagerSub, pager, alerts, len(fast[pagerTenant])); err != nil {
		return err
	}
	return readRecent(ctx, e, alerts)
}

// publishAlerts publishes alerts per tenant, concurrently, one acknowledged
// publish each, keeping the latest keepRecent in the tenant's cache.
func publishAlerts(ctx context.Context, e *env, alerts int) error {
	e.stepf("Each tenant's alert service publishes %d alerts (one acknowledged publish each) and keeps the last %d in the cache %s/%s.",
		alerts, keepRecent, alertsNS, recentCache)
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second) // a publisher held up by a subscriber would fail here
	defer cancel()
	errs := make(chan error, len(alertTenants))
	for _, t := range alertTenants {
		go func() { errs <- publishTenant(pctx, e, t, alerts) }()
	}
	var failed []string
	for range alertTenants {
		if err := <-errs; err != nil {
			failed = append(failed, err.Error())
		}
	}
	e.check(len(failed) == 0, "every publish was acknowledged without waiting for the stalled subscriber%s", strings.Join(append([]string{""}, failed...), ": "))
	return nil
}

func publishTenant(ctx context.Context, e *env, tenant string, alerts int) error {
	c, err := e.dial(ctx, tenant, client.Options{PublishConns: 1, PublishStreamsPerConn: 1, CacheConns: 1, CacheStreamsPerConn: 1})
	if err != nil {
		return err
	}
	defer c.Close()
	recent := c.Cache(alertsNS, recentCache)
	var last []alert
	for seq := 1; seq <= alerts; seq++ {
		a := newAlert(tenant, seq)
		body, _ := json.Marshal(a)
		if err := c.Publish(ctx, alertsNS, alertsStream, body); err != nil {
			return fmt.Errorf("%s: publish alert %d: %w", tenant, seq, err)
		}
		last = append(last, a)
		if len(last) > keepRecent {
			last = last[1:]
		}
		list, _ := json.Marshal(last)
		if _, err := recent.Put(ctx, recentKey, list); err != nil {
			return fmt.Errorf("%s: cache the last alerts: %w", tenant, err)
		}
	}
	return nil
}

// drainPager wakes the stalled subscriber, reads what the broker kept for
// it, and accounts for every alert it missed.
func drainPager(ctx context.Context, e *env, sub *client.Subscription, pager *received, alerts, others int) error {
	e.stepf("The pager wakes up and reads what the broker kept for it.")
	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { readAll(rctx, sub, pager) })
	defer func() { stop(); wg.Wait() }()

	var stats []broker.SubStats
	if eb := e.b.embedded; eb != nil {
		st, err := eb.Engine.Stream(alertTenants[0], alertsNS, alertsStream)
		if err != nil {
			return err
		}
		var mine broker.SubStats
		// The broker has handed the pager everything it kept once it has
		// read every event its queue accepted.
		err = waitFor(ctx, 5*time.Millisecond, func() bool {
			stats = st.Stats().Subscriptions
			found := false
			for _, s := range stats {
				if s.ID == sub.ID() {
					mine, found = s, true
				}
			}
			return found && uint64(pager.count()) >= mine.Enqueued && mine.QueueLen == 0
		})
		if err != nil {
			return err
		}
	} else {
		// External broker: read until the stream is quiet.
		last := -1
		for last != pager.count() {
			last = pager.count()
			if err := sleep(ctx, 500*time.Millisecond); err != nil {
				return err
			}
		}
	}
	gaps, missed := pager.gaps(alerts)
	got := pager.count()
	e.notef("%s received %d/%d alerts; missed %d: %s", pager.name, got, alerts, missed, gaps)
	if missed == 0 {
		e.notef("(the broker's queue absorbed the whole burst: publish more alerts or lower its --queue-capacity to see drops)")
	}
	e.check(got+missed == alerts && (missed > 0 || e.b.embedded == nil) && pager.inOrderSubset(),
		"%s: %d received + %d missed = %d published (the drops are gaps in the sequence, the rest in order)", pager.name, got, missed, alerts)
	if stats == nil {
		e.notef("(against an external broker the drop counters are in its metrics)")
		return nil
	}
	var pagerDropped, othersDropped uint64
	for _, s := range stats {
		if s.ID == sub.ID() {
			pagerDropped = s.Dropped
		} else {
			othersDropped += s.Dropped
		}
	}
	e.notef("broker counters for %s/%s/%s: pager dropped %d (policy drop_new), the other %d subscriptions dropped %d",
		alertTenants[0], alertsNS, alertsStream, pagerDropped, others, othersDropped)
	e.check(pagerDropped == uint64(missed) && othersDropped == 0,
		"the broker counted the pager's %d drops exactly, and 0 for everyone else", missed)
	return nil
}

// inOrderSubset reports whether the received sequence numbers increase.
func (r *received) inOrderSubset() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 1; i < len(r.seqs); i++ {
		if r.seqs[i] <= r.seqs[i-1] {
			return false
		}
	}
	return r.foreign == 0
}

// readRecent reads each tenant's cached last alerts as a dashboard that
// connects late would.
func readRecent(ctx context.Context, e *env, alerts int) error {
	e.stepf("A dashboard that connects late reads each tenant's last %d alerts from the cache.", keepRecent)
	for _, t := range alertTenants {
		c, err := e.dial(ctx, t, client.Options{CacheConns: 1, CacheStreamsPerConn: 1})
		if err != nil {
			return err
		}
		val, found, err := c.Cache(alertsNS, recentCache).Get(ctx, recentKey)
		c.Close()
		if err != nil {
			return fmt.Errorf("%s: get %s: %w", t, recentKey, err)
		}
		var last []alert
		_ = json.Unmarshal(val, &last)
		var seqs []string
		ok := found && len(last) == keepRecent
		for i, a := range last {
			seqs = append(seqs, fmt.Sprint(a.Seq))
			ok = ok && a.Tenant == t && a.Seq == alerts-keepRecent+1+i
		}
		if len(last) > 0 {
			e.notef("%s/%s/%s[%s]: alerts %s; newest: %q (%s)", t, alertsNS, recentCache, recentKey, strings.Join(seqs, ", "), last[len(last)-1].Text, last[len(last)-1].Severity)
		}
		e.check(ok, "tenant %s: the cache holds its %d latest alerts, %d–%d", t, keepRecent, alerts-keepRecent+1, alerts)
	}
	return nil
}
