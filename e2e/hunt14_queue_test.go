package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/wire"
)

// hunt14Delivery is one message a queue worker took.
type hunt14Delivery struct {
	worker  int
	joined  time.Time // when the worker's consumer session joined
	offset  uint64
	attempt int
	at      time.Time
}

// A consumer group of two workers on a durable stream (--fsync always),
// both through a lossy, duplicating, reordering link, while an acked
// publisher (through the same link) adds records and the broker is
// SIGKILLed and restarted (twice here). Workers ack with Ack and AckAsync in
// turn and always nack the "poison" records (with delays), which the
// broker dead-letters into the declared durable .dlq stream after
// --queue-max-attempts deliveries. Afterwards:
//   - every acked publish is in the stream's log exactly once, in order;
//   - no record whose Ack returned nil reached a consumer session joined
//     after that (the promise of Message.Ack across a crash);
//   - the group finishes (Lag, InFlight, Pending 0), every poison record is
//     in the .dlq with its payload and at least max-attempts attempts, and
//     no other record is unless it used up its attempts too (never one
//     whose Ack returned nil);
//   - after a clean restart (SIGTERM), the group delivers nothing again;
//   - every log verifies and the broker never panicked.
func TestHunt14QueueDLQLossyKill(t *testing.T) {
	hunt14QueueDLQ(t, hunt14QueueConfig{policy: "always", maxAttempts: 4, poisonEvery: 8, kills: 2,
		pubPause: 12 * time.Millisecond, prefetch: 8})
}

type hunt14QueueConfig struct {
	policy      string // the streams' fsync policy
	maxAttempts int
	poisonEvery uint64 // ids with id%poisonEvery == poisonEvery/2 are always nacked
	kills       int
	records     uint64        // published (default 400)
	pubPause    time.Duration // between publishes
	prefetch    int
	batch       int  // events per publish (default 1)
	lastTerm    bool // the last stop is a SIGTERM (a drain), not a SIGKILL
}

func hunt14QueueDLQ(t *testing.T, cfg hunt14QueueConfig) {
	policy, maxAttempts := cfg.policy, cfg.maxAttempts
	b := hunt14Start(t, "--durable-stream", "default/default/h14q:"+policy, "--durable-stream", "default/default/h14q.dlq:"+policy,
		"--queue-max-attempts", fmt.Sprint(maxAttempts), "--queue-ack-timeout", "3s",
		"--queue-backoff-min", "100ms", "--queue-backoff-max", "300ms")
	b.ready()
	px := b.proxy(badLink)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	poison := func(id uint64) bool { return id%cfg.poisonEvery == cfg.poisonEvery/2 }

	var (
		mu         sync.Mutex
		acked      = map[uint64]bool{}   // publish ids acked ok
		failed     = map[uint64]bool{}   // publish failed: stored or not
		refused    = map[uint64]string{} // the broker's error ack: not stored
		deliveries []hunt14Delivery
		syncAcked  = map[uint64]time.Time{} // offset -> when its Ack returned nil
		bad        []string
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		bad = append(bad, fmt.Sprintf(format, args...))
		mu.Unlock()
	}

	// The publisher: ids 0..total-1, one acked publish at a time.
	total := uint64(400)
	if cfg.records > 0 {
		total = cfg.records
	}
	pubDone := make(chan struct{})
	pc := b.dialVia(px, shortIdle(2*time.Second))
	go func() {
		defer close(pubDone)
		batch := uint64(max(cfg.batch, 1))
		for id := uint64(0); id < total && ctx.Err() == nil; id += batch {
			var payloads [][]byte
			for i := id; i < id+batch && i < total; i++ {
				payloads = append(payloads, hunt7Payload(i))
			}
			pctx, pcancel := context.WithTimeout(ctx, 4*time.Second)
			err := pc.PublishBatch(pctx, "default", "h14q", payloads, client.WithAck(wire.AckPerBatch))
			pcancel()
			mu.Lock()
			for i := range uint64(len(payloads)) {
				var se *client.ServerError
				switch {
				case err == nil:
					acked[id+i] = true
				case errors.As(err, &se):
					refused[id+i] = se.Message
				default:
					failed[id+i] = true
				}
			}
			mu.Unlock()
			time.Sleep(cfg.pubPause) // spread over the crashes
		}
	}()

	// Two workers, each its own client through the link, rejoining after
	// every loss.
	wctx, wcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range 2 {
		c := b.dialVia(px, shortIdle(2*time.Second))
		rng := rand.New(rand.NewPCG(uint64(w), 14))
		wg.Go(func() {
			for wctx.Err() == nil {
				jctx, jcancel := context.WithTimeout(wctx, 3*time.Second)
				co, err := c.Consumer(jctx, "default", "h14q", "g", client.WithPrefetch(cfg.prefetch))
				jcancel()
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				joined := time.Now()
			session:
				for wctx.Err() == nil {
					nctx, ncancel := context.WithTimeout(wctx, 2*time.Second)
					m, err := co.Next(nctx)
					ncancel()
					if err != nil {
						select {
						case <-co.Done():
						default:
							if wctx.Err() == nil && nctx.Err() != nil {
								continue // idle
							}
						}
						break session
					}
					id, ok := hunt7ID(m.Payload)
					if !ok {
						fail("worker %d: offset %d has a foreign payload %x", w, m.Offset, m.Payload)
						continue
					}
					mu.Lock()
					deliveries = append(deliveries, hunt14Delivery{worker: w, joined: joined, offset: m.Offset, attempt: m.Attempt, at: time.Now()})
					mu.Unlock()
					actx, acancel := context.WithTimeout(wctx, 3*time.Second)
					switch {
					case poison(id):
						_ = m.Nack(actx, time.Duration(rng.IntN(80))*time.Millisecond)
					case m.Offset%2 == 0:
						if err := m.Ack(actx); err == nil {
							mu.Lock()
							if _, dup := syncAcked[m.Offset]; !dup {
								syncAcked[m.Offset] = time.Now()
							}
							mu.Unlock()
						}
					default:
						_ = m.AckAsync()
					}
					acancel()
				}
				co.Close()
			}
		})
	}

	// Crashes while all of that runs.
	for i := range cfg.kills {
		time.Sleep(time.Duration(3000/cfg.kills+rand.IntN(1000)) * time.Millisecond)
		sig := syscall.SIGKILL
		if cfg.lastTerm && i == cfg.kills-1 {
			sig = syscall.SIGTERM
		}
		if err := b.stop(sig); err != nil && sig == syscall.SIGTERM {
			t.Errorf("broker after SIGTERM: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
		b.start()
	}
	<-pubDone
	within(t, ctx, "publishing")

	// Wait for the group to finish.
	sc := dialProc(t, b.addr, b.dataDir)
	var st client.GroupStats
	for {
		qctx, qcancel := context.WithTimeout(ctx, 2*time.Second)
		var err error
		st, err = sc.QueueStats(qctx, "default", "h14q", "g")
		qcancel()
		if err == nil && st.Lag == 0 && st.InFlight == 0 && st.Pending == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("group did not finish: %+v (err %v)", st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("group: %+v", st)
	wcancel()
	wg.Wait()
	sc.Close()
	b.stop(syscall.SIGTERM)

	mu.Lock()
	defer mu.Unlock()
	for _, s := range bad {
		t.Error(s)
	}
	// The stream's log: acked ids exactly once, everything in order.
	dir := filepath.Join(b.dataDir, "streams", "default", "default", "h14q")
	idAt := map[uint64]uint64{} // offset -> id
	payloadAt := map[uint64][]byte{}
	seen := map[uint64]int{}
	prev := int64(-1)
	forEachRecord(t, dir, func(r commitlog.Record) {
		id, ok := hunt7ID(r.Payload)
		if !ok {
			t.Fatalf("offset %d holds a foreign payload", r.Offset)
		}
		if int64(id) <= prev {
			t.Errorf("offset %d: id %d after %d", r.Offset, id, prev)
		}
		prev = int64(id)
		seen[id]++
		idAt[r.Offset] = id
		payloadAt[r.Offset] = r.Payload
	})
	for id := range acked {
		if seen[id] != 1 {
			t.Errorf("acked publish %d stored %d times", id, seen[id])
		}
	}
	for id, msg := range refused {
		if seen[id] != 0 {
			t.Errorf("publish %d refused by the broker (%q) but stored", id, msg)
		}
	}
	for id := range failed {
		if seen[id] > 1 {
			t.Errorf("failed publish %d stored %d times", id, seen[id])
		}
	}
	if uint64(len(acked)) < total/2 {
		t.Errorf("only %d of %d publishes acked", len(acked), total)
	}

	// Ack returned nil: never delivered to a session joined later.
	for _, d := range deliveries {
		if at, ok := syncAcked[d.offset]; ok && d.joined.After(at) {
			t.Errorf("offset %d: Ack returned nil at %v, delivered again (attempt %d) to worker %d's session joined at %v",
				d.offset, at.Format("15:04:05.000"), d.attempt, d.worker, d.joined.Format("15:04:05.000"))
		}
	}

	// The dead letters.
	dlq := map[uint64]int{}
	forEachRecord(t, filepath.Join(b.dataDir, "streams", "default", "default", "h14q.dlq"), func(r commitlog.Record) {
		var dl wire.DeadLetter
		if err := json.Unmarshal(r.Payload, &dl); err != nil {
			t.Fatalf("dead letter at %d: %v: %s", r.Offset, err, r.Payload)
		}
		id, ok := idAt[dl.Offset]
		switch {
		case !ok:
			t.Errorf("dead letter for offset %d, not in the stream", dl.Offset)
		case dl.Stream == "" || dl.Group != "g":
			t.Errorf("dead letter %+v names the wrong stream or group", dl)
		case !bytes.Equal(dl.Payload, payloadAt[dl.Offset]):
			t.Errorf("dead letter for offset %d carries another payload", dl.Offset)
		case dl.Attempts < maxAttempts:
			t.Errorf("offset %d dead-lettered after %d attempts (max %d)", dl.Offset, dl.Attempts, maxAttempts)
		case !syncAcked[dl.Offset].IsZero():
			t.Errorf("offset %d dead-lettered (%s) though its Ack returned nil at %v", dl.Offset, dl.Reason, syncAcked[dl.Offset].Format("15:04:05.000"))
		case !poison(id):
			t.Logf("note: healthy offset %d (id %d) dead-lettered after %d attempts: %s", dl.Offset, id, dl.Attempts, dl.Reason)
		}
		dlq[dl.Offset]++
	})
	poisoned, dups := 0, 0
	for off, id := range idAt {
		if !poison(id) {
			continue
		}
		poisoned++
		if dlq[off] == 0 {
			t.Errorf("poison offset %d (id %d) is not in the dead-letter stream", off, id)
		}
	}
	for off, n := range dlq {
		if n > 1 {
			dups++
			t.Logf("offset %d dead-lettered %d times", off, n)
		}
	}
	t.Logf("%d acked publishes (%d failed, %d refused), %d stored, %d deliveries, %d sync acks, %d poison, %d dead letters (%d offsets twice or more)",
		len(acked), len(failed), len(refused), len(idAt), len(deliveries), len(syncAcked), poisoned, len(dlq), dups)

	// A clean restart delivers nothing again.
	b.start()
	c := dialProc(t, b.addr, b.dataDir)
	defer c.Close()
	co, err := c.Consumer(ctx, "default", "h14q", "g")
	if err != nil {
		t.Fatal(err)
	}
	nctx, ncancel := context.WithTimeout(ctx, time.Second)
	defer ncancel()
	if m, err := co.Next(nctx); err == nil {
		t.Errorf("after a clean restart the finished group delivered offset %d (attempt %d) again", m.Offset, m.Attempt)
	}
	co.Close()
}

// The same with a backlog: 2,000 records published in acked batches of 100
// to a stream under --fsync interval (a process crash loses nothing
// written, acks included), consumers with prefetch 64 behind them, so
// many deliveries are in flight at each stop; two SIGKILLs then a SIGTERM
// (acks made during the drain count as any other). Every check above
// holds, and a batch the broker refused (an error ack) is not stored.
func TestHunt14QueueBacklogKillTerm(t *testing.T) {
	hunt14QueueDLQ(t, hunt14QueueConfig{policy: "interval", maxAttempts: 5, poisonEvery: 64, kills: 3,
		records: 2000, pubPause: 100 * time.Millisecond, prefetch: 64, batch: 100, lastTerm: true})
}
