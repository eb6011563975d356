package dataplane

import (
	"context"
	"math"
	"math/bits"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// latencyBuckets is a histogram of request times kept with atomics:
// bucket i counts times below 2^i microseconds (the last takes the rest).
type latencyBuckets [24]atomic.Uint64

func (h *latencyBuckets) observe(d time.Duration) {
	us := uint64(max(d.Microseconds(), 0))
	i := min(bits.Len64(us), len(h)-1)
	h[i].Add(1)
}

func (h *latencyBuckets) snapshot() (s [24]uint64) {
	for i := range h {
		s[i] = h[i].Load()
	}
	return s
}

// quantile returns the upper bound of the bucket holding quantile q of
// the counts in d, in milliseconds; 0 with no counts.
func quantile(d [24]uint64, q float64) float64 {
	var total uint64
	for _, c := range d {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, c := range d {
		seen += c
		if seen >= rank {
			return float64(uint64(1)<<i) / 1000
		}
	}
	return float64(uint64(1)<<(len(d)-1)) / 1000
}

// poolMetrics publishes POOL_METRICS for each pool at its interval.
func (p *Proxy) poolMetrics(ctx context.Context) {
	// counts are a backend's counters at the last tick.
	type counts struct {
		requests uint64
		lat      [24]uint64
	}
	type last struct {
		at       time.Time
		backends map[*backend]counts
	}
	prev := map[string]*last{}
	// The timer wakes when the next pool is due; without pools it looks
	// again every second (a new pool's first pass only starts its
	// interval).
	const idle, least = time.Second, 10 * time.Millisecond
	timer := time.NewTimer(least)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-timer.C:
			p.mu.Lock()
			pools := p.pools
			p.mu.Unlock()
			wait := idle
			for name, pr := range pools {
				l := prev[name]
				every := pr.spec.MetricsInterval.D()
				if l != nil && now.Sub(l.at) < every {
					wait = min(wait, every-now.Sub(l.at))
					continue
				}
				wait = min(wait, every)
				// Each backend counts from its own last reading, so a server
				// that joins or leaves the pool moves no other's count; a
				// backend new since the last tick counts from zero.
				cur := &last{at: now, backends: make(map[*backend]counts, len(pr.members))}
				var done uint64
				var d [24]uint64
				servers := []map[string]any{}
				for _, m := range pr.members {
					c := counts{requests: m.requests.Load(), lat: m.latency.snapshot()}
					cur.backends[m.backend] = c
					var was counts
					if l != nil {
						was = l.backends[m.backend]
					}
					done += c.requests - min(c.requests, was.requests)
					for i := range d {
						d[i] += c.lat[i] - min(c.lat[i], was.lat[i])
					}
					servers = append(servers, map[string]any{
						"ip": m.ip, "port": m.port, "hostname": m.hostname,
						"open_connections": m.open.Load(), "active_requests": m.active.Load(), "up": m.up(),
					})
				}
				prev[name] = cur
				if l == nil {
					// The first tick only starts the interval.
					continue
				}
				up, total := pr.counts()
				secs := now.Sub(l.at).Seconds()
				_ = p.pub.event("POOL_METRICS", "pool", name, map[string]any{"pool_metrics_details": map[string]any{
					"pool": name, "servers_up": up, "servers_total": total,
					"requests_per_sec": math.Round(float64(done)/secs*100) / 100,
					"p95_latency_ms":   quantile(d, 0.95),
					"interval_sec":     math.Round(secs*1000) / 1000,
					"servers":          servers,
				}})
			}
			for name := range prev {
				if pools[name] == nil {
					delete(prev, name)
				}
			}
			timer.Reset(max(wait, least))
		}
	}
}

// collector exposes the proxy's counters to Prometheus, read at scrape
// time from the atomics the request path keeps.
type collector struct{ p *Proxy }

var (
	descVSConns = prometheus.NewDesc("vigil_vs_open_connections", "Client connections open on a virtual service.",
		[]string{"virtual_service"}, nil)
	descVSRequests = prometheus.NewDesc("vigil_vs_requests_total", "Requests answered by a virtual service, by status class.",
		[]string{"virtual_service", "code"}, nil)
	descPoolUp = prometheus.NewDesc("vigil_pool_servers_up", "Servers of a pool that take requests.",
		[]string{"pool"}, nil)
	descServerRequests = prometheus.NewDesc("vigil_server_requests_total", "Requests sent to a server.",
		[]string{"pool", "server"}, nil)
	descServerConns = prometheus.NewDesc("vigil_server_open_connections", "Connections open to a server, in use or idle.",
		[]string{"pool", "server"}, nil)
	descServerActive = prometheus.NewDesc("vigil_server_active_requests", "Requests in flight to a server.",
		[]string{"pool", "server"}, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descVSConns, descVSRequests, descPoolUp, descServerRequests, descServerConns, descServerActive} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	for name, l := range c.p.listeners {
		ch <- prometheus.MustNewConstMetric(descVSConns, prometheus.GaugeValue, float64(l.conns.Load()), name)
		for i := range l.statuses {
			ch <- prometheus.MustNewConstMetric(descVSRequests, prometheus.CounterValue, float64(l.statuses[i].Load()), name, strconv.Itoa(i+1)+"xx")
		}
	}
	for name, pr := range c.p.pools {
		up, _ := pr.counts()
		ch <- prometheus.MustNewConstMetric(descPoolUp, prometheus.GaugeValue, float64(up), name)
		for _, m := range pr.members {
			ch <- prometheus.MustNewConstMetric(descServerRequests, prometheus.CounterValue, float64(m.requests.Load()), name, m.addr)
			ch <- prometheus.MustNewConstMetric(descServerConns, prometheus.GaugeValue, float64(m.open.Load()), name, m.addr)
			ch <- prometheus.MustNewConstMetric(descServerActive, prometheus.GaugeValue, float64(m.active.Load()), name, m.addr)
		}
	}
}
