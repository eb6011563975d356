package runner

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestThroughputProbe(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.PoolSize = 16 })
	h.waitWarm(t)
	h.script(t, "tick", `{"source": "import time\nprint(time.time_ns(), flush=True)\n"}`)
	var n atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				ex, err := h.r.Submit(ctx, RunRequest{Script: "tick", User: "t"})
				if err == nil {
					if f, err := h.r.Wait(ctx, ex.ID); err == nil && f.Status == StatusSucceeded {
						n.Add(1)
					}
				}
				cancel()
			}
		}()
	}
	time.Sleep(10 * time.Second)
	stop.Store(true)
	wg.Wait()
	t.Logf("%.1f runs/s", float64(n.Load())/10)
}
