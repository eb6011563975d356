package dataplane

import (
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/vigilhq/vigil/dataplane/spec"
)

// balancer chooses an up server of a pool.
type balancer interface {
	pick(key []byte) *member
}

func newBalancer(p *spec.Pool, backends []*member) balancer {
	switch p.Algorithm() {
	case spec.LBLeastConnections:
		return leastConns(backends)
	case spec.LBConsistentHash:
		return newRing(backends)
	default:
		return newRoundRobin(backends)
	}
}

// roundRobin walks a schedule in which each server appears ratio times,
// interleaved, skipping servers that are down.
type roundRobin struct {
	order []*member
	next  atomic.Uint64
}

func newRoundRobin(backends []*member) *roundRobin {
	rr := &roundRobin{}
	left := make([]int, len(backends))
	for i, b := range backends {
		// Disabled servers take no place in the schedule; a server that
		// is down for a while passes its turns to the next in it.
		if b.enabled {
			left[i] = b.ratio
		}
	}
	for more := true; more; {
		more = false
		for i, b := range backends {
			if left[i] > 0 {
				rr.order = append(rr.order, b)
				left[i]--
				more = more || left[i] > 0
			}
		}
	}
	return rr
}

func (rr *roundRobin) pick([]byte) *member {
	n := uint64(len(rr.order))
	if n == 0 {
		return nil
	}
	start := rr.next.Add(1)
	for i := range n {
		if b := rr.order[(start+i)%n]; b.up() {
			return b
		}
	}
	return nil
}

// leastConns picks the up server with the fewest requests in flight per
// unit of ratio; ties go to the first.
type leastConns []*member

func (l leastConns) pick([]byte) *member {
	var best *member
	var bestLoad int64
	for _, b := range l {
		if !b.up() {
			continue
		}
		// Compare active/ratio without division: scale by the other's ratio.
		load := b.active.Load()
		if best == nil || load*int64(best.ratio) < bestLoad*int64(b.ratio) {
			best, bestLoad = b, load
		}
	}
	return best
}

// ring is a consistent-hash ring with pointsPerRatio points per unit of
// a server's ratio; a key goes to the first up server clockwise from its
// hash, so that a server going down moves only its own keys.
type ring struct {
	points []ringPoint
}

type ringPoint struct {
	hash uint64
	b    *member
}

const pointsPerRatio = 64

// fnv1a is the 64-bit FNV-1a hash with a final mix (MurmurHash3's) so
// that near keys spread over the ring: fixed, so that every vigil process
// maps a key to the same server.
func fnv1a[T string | []byte](s T) uint64 {
	h := uint64(14695981039346656037)
	for i := range len(s) {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

func newRing(backends []*member) *ring {
	r := &ring{}
	for _, b := range backends {
		for i := range b.ratio * pointsPerRatio {
			h := fnv1a(b.addr + "#" + strconv.Itoa(i))
			r.points = append(r.points, ringPoint{h, b})
		}
	}
	slices.SortFunc(r.points, func(a, b ringPoint) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return 0
	})
	return r
}

func (r *ring) pick(key []byte) *member {
	n := len(r.points)
	if n == 0 {
		return nil
	}
	h := fnv1a(key)
	i, _ := slices.BinarySearchFunc(r.points, h, func(p ringPoint, h uint64) int {
		switch {
		case p.hash < h:
			return -1
		case p.hash > h:
			return 1
		}
		return 0
	})
	for j := range n {
		if b := r.points[(i+j)%n].b; b.up() {
			return b
		}
	}
	return nil
}
