package metrics

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/felixmq/felix/diskfree"
)

// The free-space watch exports its reading, its floor, whether the alarm
// is on and how many writes it refused.
func TestScrapeDiskAlarm(t *testing.T) {
	var free atomic.Int64
	free.Store(10 << 20)
	g, err := diskfree.Start(diskfree.Options{Dir: "/data", Limit: 50 << 20, Logger: quiet,
		Free: func(string) (uint64, error) { return uint64(free.Load()), nil },
		Tick: func(time.Duration) <-chan time.Time { return nil }, // one look, at start
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for range 3 {
		if g.Check() == nil {
			t.Fatal("10 MiB free under a 50 MiB floor: Check passed")
		}
	}
	f := scrape(t, startServer(t, Options{Sources: Sources{Disk: g}}))
	for name, want := range map[string]float64{
		"felix_disk_free_bytes": 10 << 20, "felix_disk_free_limit_bytes": 50 << 20, "felix_disk_alarm": 1,
		"felix_disk_alarms_total": 1, "felix_disk_alarm_refusals_total": 3,
	} {
		if v := f.value(t, name); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	if f := scrape(t, startServer(t, Options{Sources: Sources{}})); f.find("felix_disk_alarm") != nil {
		t.Error("felix_disk_alarm exported without a disk guard")
	}
}

// The overview carries the free-space watch's reading, floor, alarm and
// refusals, and leaves it out when there is no watch.
func TestOverviewDisk(t *testing.T) {
	g, err := diskfree.Start(diskfree.Options{Dir: "/data", Limit: 50 << 20, Logger: quiet,
		Free: func(string) (uint64, error) { return 10 << 20, nil },
		Tick: func(time.Duration) <-chan time.Time { return nil }, // one look, at start
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	g.Check()
	o := overviewOf(t, startServer(t, Options{Sources: Sources{Disk: g}}))
	if o.Disk == nil || *o.Disk != (DiskView{FreeBytes: 10 << 20, LimitBytes: 50 << 20, Alarm: true, Refused: 1}) {
		t.Fatalf("overview disk = %+v", o.Disk)
	}
	if o := overviewOf(t, startServer(t, Options{Sources: Sources{}})); o.Disk != nil {
		t.Fatalf("overview without a disk guard has disk %+v", o.Disk)
	}
}
