package actions

import (
	"container/list"
	"errors"
	"slices"
	"sync"
)

// DefaultCachedStates bounds the states an engine keeps in memory.
const DefaultCachedStates = 10_000

// CachedStore keeps the states an engine last read or wrote, with their
// revisions, in front of a RevStore, so that deciding an event usually
// costs one write and no read. A key it does not hold is assumed new: the
// write then expects no revision, and if the key exists after all (another
// engine wrote it, or it was evicted) the write fails as a conflict, the
// key is read from the store, and the engine decides again. Revisions keep
// every decision exact; the cache only saves round trips.
type CachedStore struct {
	RevStore
	max int

	mu       sync.Mutex
	lru      *list.List // of *cacheEntry, most recent first
	entries  map[[2]string]*list.Element
	mustLoad map[[2]string]bool
}

type cacheEntry struct {
	k   [2]string
	st  *GroupState
	rev uint64
}

// RevStore is a StateStore whose writes tell the new revision; KVStore is
// one.
type RevStore interface {
	StateStore
	SaveRev(config, key string, st *GroupState, rev uint64) (uint64, error)
}

// NewCachedStore wraps s with a cache of at most n states.
func NewCachedStore(s RevStore, n int) *CachedStore {
	if n <= 0 {
		n = DefaultCachedStates
	}
	return &CachedStore{RevStore: s, max: n, lru: list.New(), entries: map[[2]string]*list.Element{}, mustLoad: map[[2]string]bool{}}
}

// Load returns the cached state, else the store's (and caches it).
func (c *CachedStore) Load(config, key string) (*GroupState, uint64, error) {
	return c.load(config, key, false)
}

// LoadOptimistic returns the cached state, else nil and 0 for a key that
// never conflicted (it is assumed new), else the store's state.
func (c *CachedStore) LoadOptimistic(config, key string) (*GroupState, uint64, error) {
	return c.load(config, key, true)
}

func (c *CachedStore) load(config, key string, optimistic bool) (*GroupState, uint64, error) {
	k := [2]string{config, key}
	c.mu.Lock()
	if el, ok := c.entries[k]; ok {
		c.lru.MoveToFront(el)
		e := el.Value.(*cacheEntry)
		st, rev := cloneState(e.st), e.rev
		c.mu.Unlock()
		return st, rev, nil
	}
	must := c.mustLoad[k]
	c.mu.Unlock()
	if optimistic && !must {
		return nil, 0, nil
	}
	st, rev, err := c.RevStore.Load(config, key)
	if err != nil {
		return nil, 0, err
	}
	c.mu.Lock()
	delete(c.mustLoad, k)
	c.put(k, st, rev)
	c.mu.Unlock()
	return cloneState(st), rev, nil
}

// Save writes through; a conflict drops the key from the cache and marks
// it to be read from the store next time.
func (c *CachedStore) Save(config, key string, st *GroupState, rev uint64) error {
	_, err := c.SaveRev(config, key, st, rev)
	return err
}

// SaveRev is Save, and returns the state's new revision.
func (c *CachedStore) SaveRev(config, key string, st *GroupState, rev uint64) (uint64, error) {
	newRev, err := c.RevStore.SaveRev(config, key, st, rev)
	k := [2]string{config, key}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if el, ok := c.entries[k]; ok {
			c.lru.Remove(el)
			delete(c.entries, k)
		}
		if errors.Is(err, ErrConflict) {
			c.mustLoad[k] = true
		}
		return 0, err
	}
	c.put(k, cloneState(st), newRev)
	return newRev, nil
}

// Delete removes the state from the store and the cache.
func (c *CachedStore) Delete(config, key string) error {
	k := [2]string{config, key}
	c.mu.Lock()
	if el, ok := c.entries[k]; ok {
		c.lru.Remove(el)
		delete(c.entries, k)
	}
	c.mustLoad[k] = true
	c.mu.Unlock()
	return c.RevStore.Delete(config, key)
}

func (c *CachedStore) put(k [2]string, st *GroupState, rev uint64) {
	if el, ok := c.entries[k]; ok {
		e := el.Value.(*cacheEntry)
		e.st, e.rev = st, rev
		c.lru.MoveToFront(el)
		return
	}
	if st == nil {
		// A key the store does not hold: nothing to keep. The next Load
		// assumes new, which is right until someone writes it.
		return
	}
	c.entries[k] = c.lru.PushFront(&cacheEntry{k, st, rev})
	for c.lru.Len() > c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.entries, old.Value.(*cacheEntry).k)
	}
	if len(c.mustLoad) > 4*c.max {
		// Keys marked long ago: re-marked on their next conflict.
		clear(c.mustLoad)
	}
}

func cloneState(st *GroupState) *GroupState {
	if st == nil {
		return nil
	}
	c := *st
	c.Hits, c.Recent, c.Seen, c.Outbox, c.Alert = slices.Clone(st.Hits), slices.Clone(st.Recent), slices.Clone(st.Seen), slices.Clone(st.Outbox), copyAlert(st.Alert)
	return &c
}

// Queued drops requests that are on the actions stream from the cached
// state's outbox; the group's next write leaves them out.
func (c *CachedStore) Queued(config, key string, keys []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[[2]string{config, key}]; ok {
		e := el.Value.(*cacheEntry)
		e.st.Outbox = slices.DeleteFunc(e.st.Outbox, func(o Outbound) bool { return slices.Contains(keys, o.Key) })
	}
}
