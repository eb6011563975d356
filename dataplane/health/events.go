package health

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/vigilhq/vigil/events"
)

// Publisher stores events; *events.Bus is one.
type Publisher interface {
	Publish(ctx context.Context, ev *events.Event) (events.PublishResult, error)
}

var _ Publisher = (*events.Bus)(nil)

// PublisherFunc adapts a function to Publisher.
type PublisherFunc func(ctx context.Context, ev *events.Event) error

// Publish calls f.
func (f PublisherFunc) Publish(ctx context.Context, ev *events.Event) (events.PublishResult, error) {
	return events.PublishResult{}, f(ctx, ev)
}

// Event ids and object types of the events a Checker publishes.
const (
	EventServerDown = "SERVER_DOWN"
	EventServerUp   = "SERVER_UP"
	EventPoolDown   = "POOL_DOWN"
	EventPoolUp     = "POOL_UP"
	EventVSDown     = "VS_DOWN"
	EventVSUp       = "VS_UP"

	ObjTypePool           = "pool"
	ObjTypeVirtualService = "virtualservice"
)

// poolDetails is Avi's SeHmEventPoolDetails, the se_hm_pool_details of
// the server and pool events.
type poolDetails struct {
	Pool             string         `json:"pool"`
	VirtualService   string         `json:"virtual_service,omitempty"`
	Server           *serverDetails `json:"server,omitempty"`
	PercentServersUp int            `json:"percent_servers_up"`
}

// serverDetails is Avi's SeHmEventServerDetails.
type serverDetails struct {
	IP          ipAddr       `json:"ip"`
	Port        int          `json:"port"`
	Hostname    string       `json:"hostname,omitempty"`
	FailureCode string       `json:"failure_code,omitempty"`
	Shm         []shmDetails `json:"shm,omitempty"`
}

// ipAddr is Avi's IPAddr: addr and type V4 or V6.
type ipAddr struct {
	Addr string `json:"addr"`
	Type string `json:"type"`
}

// shmDetails is Avi's SeHmEventShmDetails: one monitor's last result.
type shmDetails struct {
	HealthMonitor       string `json:"health_monitor"`
	ResponseCode        int    `json:"response_code,omitempty"`
	RespString          string `json:"resp_string,omitempty"`
	AverageResponseTime uint64 `json:"average_response_time,omitempty"` // ms
}

// vsDetails is Avi's SeHmEventVsDetails, the se_hm_vs_details of VS_DOWN
// and VS_UP.
type vsDetails struct {
	VirtualService string `json:"virtual_service"`
	Reason         string `json:"reason,omitempty"`
}

func newIPAddr(ip string) ipAddr {
	t := "V4"
	if a, err := netip.ParseAddr(ip); err == nil && a.Is6() && !a.Is4In6() {
		t = "V6"
	}
	return ipAddr{Addr: ip, Type: t}
}

// percent is the share of total that up is, rounded down.
func percent(up, total int) int {
	if total <= 0 {
		return 0
	}
	return up * 100 / total
}

// transition is a server's change of state and what it takes down or up
// with it; buildEvents turns it into the events to publish.
type transition struct {
	pool     string
	vses     []string
	server   serverDetails
	up       bool
	monitor  string // the monitor that went down, for SERVER_DOWN
	pct      int
	poolFlip bool // the pool went down or up too
}

// buildEvents builds t's events, in the order they are published.
func (c *Checker) buildEvents(t *transition, now time.Time) []*events.Event {
	pd := poolDetails{Pool: t.pool, Server: &t.server, PercentServersUp: t.pct}
	if len(t.vses) > 0 {
		pd.VirtualService = t.vses[0]
	}
	details := map[string]any{"se_hm_pool_details": pd}
	s := &t.server
	var out []*events.Event
	add := func(id, objType, objName string, details any, desc string) {
		ev, err := events.New(id, objType, objName, details, c.source, now)
		if err != nil {
			c.log.Error("build event", "event_id", id, "obj_name", objName, "err", err)
			return
		}
		ev.Data.EventDescription = desc
		out = append(out, ev)
	}
	if t.up {
		add(EventServerUp, ObjTypePool, t.pool, details,
			fmt.Sprintf("Server %s (%s:%d) in Pool %s is UP", s.Hostname, s.IP.Addr, s.Port, t.pool))
	} else {
		add(EventServerDown, ObjTypePool, t.pool, details,
			fmt.Sprintf("Server %s (%s:%d) in Pool %s is DOWN due to health monitor %s failure", s.Hostname, s.IP.Addr, s.Port, t.pool, t.monitor))
	}
	if !t.poolFlip {
		return out
	}
	if t.up {
		add(EventPoolUp, ObjTypePool, t.pool, details, fmt.Sprintf("Pool %s is UP", t.pool))
	} else {
		add(EventPoolDown, ObjTypePool, t.pool, details, fmt.Sprintf("Pool %s is DOWN", t.pool))
	}
	for _, vs := range t.vses {
		if t.up {
			add(EventVSUp, ObjTypeVirtualService, vs,
				map[string]any{"se_hm_vs_details": vsDetails{VirtualService: vs}},
				fmt.Sprintf("Virtual service %s is UP", vs))
		} else {
			add(EventVSDown, ObjTypeVirtualService, vs,
				map[string]any{"se_hm_vs_details": vsDetails{VirtualService: vs, Reason: fmt.Sprintf("Pool %s is DOWN", t.pool)}},
				fmt.Sprintf("Virtual service %s is DOWN", vs))
		}
	}
	return out
}

// enqueue hands evs to the publishing goroutine without waiting; when its
// queue is full the events are dropped and the drop logged. Called with
// c.mu held, so that events leave in the order of the changes.
func (c *Checker) enqueue(evs []*events.Event) {
	for _, ev := range evs {
		select {
		case c.queue <- ev:
		default:
			c.errLog.log(c.now(), "queue full", "event_id", ev.Data.EventID, "obj_name", ev.Data.ObjName)
		}
	}
}

// publishLoop publishes queued events one at a time until the queue is
// closed.
func (c *Checker) publishLoop(ctx context.Context) {
	defer close(c.pubDone)
	for ev := range c.queue {
		pctx, cancel := context.WithTimeout(ctx, c.opts.PublishTimeout)
		_, err := c.pub.Publish(pctx, ev)
		cancel()
		if err != nil {
			c.errLog.log(c.now(), "publish failed", "event_id", ev.Data.EventID, "obj_name", ev.Data.ObjName, "err", err)
			continue
		}
		c.log.Debug("event published", "event_id", ev.Data.EventID, "obj_name", ev.Data.ObjName)
	}
}

// logEvery is the least time between two lines of a rateLog.
const logEvery = 10 * time.Second

// rateLog warns that an event was not published, at most once per
// logEvery, and counts the lines it holds back.
type rateLog struct {
	logger *slog.Logger
	mu     sync.Mutex
	last   time.Time
	held   int
}

func (r *rateLog) log(now time.Time, cause string, args ...any) {
	r.mu.Lock()
	if !r.last.IsZero() && now.Sub(r.last) < logEvery {
		r.held++
		r.mu.Unlock()
		return
	}
	held := r.held
	r.last, r.held = now, 0
	r.mu.Unlock()
	r.logger.Warn("event not published", append(append([]any{"cause", cause}, args...), "suppressed", held)...)
}
