package datascript

import (
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/vigilhq/vigil/dataplane/spec"
)

// MaxLimiterKeys bounds the keys tracked per rate limiter; past it the
// least recently used of a random sample is forgotten.
const MaxLimiterKeys = 100_000

// bucket is a token bucket: rate tokens a second, up to burst.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func (b *bucket) configure(rate, burst float64, now time.Time) {
	b.rate, b.burst = rate, burst
	if b.last.IsZero() {
		b.tokens, b.last = burst, now
	}
	b.tokens = min(b.tokens, burst)
}

// take takes n tokens if it can.
func (b *bucket) take(n float64, now time.Time) bool {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.burst, b.tokens+d.Seconds()*b.rate)
		b.last = now
	}
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

// limiters are a virtual service's rate limiters: a token bucket per
// (set, limiter, key) holding count + burst_sz tokens and refilled with
// count per period.
type limiters struct {
	mu   sync.Mutex
	keys map[limiterKey]*bucket
}

type limiterKey struct{ set, limiter, key string }

func newLimiters() *limiters { return &limiters{keys: map[limiterKey]*bucket{}} }

// exceeded takes n tokens from the bucket of k, reporting true when it
// lacks them.
func (ls *limiters) exceeded(k limiterKey, rl spec.RateLimiter, n float64, now time.Time) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	b := ls.keys[k]
	if b == nil {
		if len(ls.keys) >= MaxLimiterKeys {
			ls.evict()
		}
		b = &bucket{}
		ls.keys[k] = b
	}
	period := max(rl.Period, 1)
	b.configure(float64(rl.Count)/float64(period), float64(rl.Count+rl.BurstSz), now)
	return !b.take(n, now)
}

// evict forgets the least recently used of a few keys picked at random.
func (ls *limiters) evict() {
	var oldest limiterKey
	var when time.Time
	n := 0
	for k, b := range ls.keys {
		if n == 0 || b.last.Before(when) {
			oldest, when = k, b.last
		}
		if n++; n >= 16 {
			break
		}
	}
	delete(ls.keys, oldest)
}

// vsRateLimitExceed is avi.vs.ratelimit.exceed(name, key [, consume=1]),
// with the set's rate_limiters.
func vsRateLimitExceed(st *state, L *lua.LState) int {
	name := L.CheckString(1)
	key := tableKey(L, 2)
	n := L.OptNumber(3, 1)
	rl, ok := st.set.limiters[name]
	if !ok {
		L.RaiseError("rate limiter %q is not in the rate_limiters of datascript set %q", name, st.set.name)
	}
	L.Push(lua.LBool(st.e.limiters.exceeded(limiterKey{st.set.name, name, key}, rl, float64(n), st.c.env.Clock())))
	return 1
}

// vsRateLimit is the older avi.vs.rate_limit(avi.RL_CUSTOM_STRING, key [,
// defer_action]) → exceeded, action, limited by Env.RateLimit. Without
// defer_action an exceeded limit with RL_ACTION_CLOSE_CONN or
// RL_ACTION_LOCAL_RSP (429) is applied at once and ends the script.
func vsRateLimit(st *state, L *lua.LState) int {
	if s, ok := L.Get(1).(lua.LString); !ok || string(s) != rlCustomString {
		L.ArgError(1, "must be avi.RL_CUSTOM_STRING")
	}
	key := tableKey(L, 2)
	deferAction := L.ToBool(3)
	rl := st.c.env.RateLimit
	if rl == nil {
		L.Push(lua.LFalse)
		L.Push(lua.LString(rlActionNone))
		return 2
	}
	lim := rl.WithDefaults()
	exceeded := st.e.limiters.exceeded(limiterKey{"", "", key}, lim, 1, st.c.env.Clock())
	action := st.c.env.RateLimitAction
	if !exceeded {
		action = rlActionNone
	}
	if exceeded && !deferAction {
		switch action {
		case rlActionCloseConn:
			st.t.Action = Action{Kind: ActionClose, Header: st.t.Action.Header[:0]}
			return st.stop()
		case rlActionLocalRsp:
			st.t.Action = Action{Kind: ActionRespond, Status: 429, Header: st.t.Action.Header[:0]}
			return st.stop()
		}
	}
	L.Push(lua.LBool(exceeded))
	L.Push(lua.LString(action))
	return 2
}
