package datascript

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/dataplane/spec"
)

// StringGroup is a spec.StringGroup prepared for avi.stringgroup.*.
type StringGroup struct {
	keyVal  bool
	entries []sgEntry // by key length, shortest first (Avi matches the shortest)
	exact   map[string]int
	fold    map[string]int
}

type sgEntry struct {
	key, lower, value string
}

// NewStringGroup prepares g. A group with any value is a key/value group
// (Avi's SG_TYPE_KEYVAL).
func NewStringGroup(g *spec.StringGroup) *StringGroup {
	sg := &StringGroup{exact: map[string]int{}, fold: map[string]int{}}
	for _, kv := range g.KV {
		if kv.Value != "" {
			sg.keyVal = true
		}
		sg.entries = append(sg.entries, sgEntry{key: kv.Key, lower: strings.ToLower(kv.Key), value: kv.Value})
	}
	slices.SortStableFunc(sg.entries, func(a, b sgEntry) int { return len(a.key) - len(b.key) })
	for i, e := range sg.entries {
		if _, dup := sg.exact[e.key]; !dup {
			sg.exact[e.key] = i
		}
		if _, dup := sg.fold[e.lower]; !dup {
			sg.fold[e.lower] = i
		}
	}
	return sg
}

// match finds the shortest entry that relates to s as op says.
func (g *StringGroup) match(op, s string, caseSensitive bool) (int, bool) {
	if op == "equals" {
		var i int
		var ok bool
		if caseSensitive {
			i, ok = g.exact[s]
		} else {
			i, ok = g.fold[strings.ToLower(s)]
		}
		return i, ok
	}
	if !caseSensitive {
		s = strings.ToLower(s)
	}
	for i, e := range g.entries {
		k := e.key
		if !caseSensitive {
			k = e.lower
		}
		var hit bool
		switch op {
		case "contains":
			hit = strings.Contains(s, k)
		case "beginswith":
			hit = strings.HasPrefix(s, k)
		case "endswith":
			hit = strings.HasSuffix(s, k)
		}
		if hit {
			return i, true
		}
	}
	return 0, false
}

var stringGroupFuncs = []string{"equals", "contains", "beginswith", "endswith", "equals_CASE", "contains_CASE", "beginswith_CASE", "endswith_CASE"}

func (st *state) stringGroupLib() *lua.LTable {
	t := st.L.NewTable()
	for _, name := range stringGroupFuncs {
		op, caseSensitive := strings.CutSuffix(name, "_CASE")
		st.bind(t, "avi.stringgroup.", name, mAll, func(st *state, L *lua.LState) int {
			g := st.stringGroup(L, 1)
			s := L.CheckString(2)
			i, ok := g.match(op, s, caseSensitive)
			if !ok {
				L.Push(lua.LNil)
				L.Push(lua.LFalse)
				return 2
			}
			e := g.entries[i]
			if g.keyVal {
				L.Push(lua.LString(e.value))
			} else {
				L.Push(lua.LString(e.key))
			}
			L.Push(lua.LTrue)
			return 2
		})
	}
	return t
}

func (st *state) stringGroup(L *lua.LState, n int) *StringGroup {
	name := L.CheckString(n)
	if !st.set.stringGroups[name] {
		L.RaiseError("string group %q is not in the string_group_refs of datascript set %q", name, st.set.name)
	}
	g := st.c.env.StringGroups[name]
	if g == nil {
		L.RaiseError("string group %q does not exist", name)
	}
	return g
}

// IPGroup is a spec.IPGroup prepared for avi.ipgroup.contains.
type IPGroup struct {
	addrs    map[netip.Addr]bool
	prefixes []netip.Prefix
	ranges   [][2]netip.Addr
}

// NewIPGroup prepares g; a bad address is a *config.FieldError.
func NewIPGroup(g *spec.IPGroup) (*IPGroup, error) {
	ig := &IPGroup{addrs: map[netip.Addr]bool{}}
	for i, a := range g.Addrs {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return nil, config.Errorf(fmt.Sprintf("spec.addrs[%d]", i), "must be an IP address: %w", err)
		}
		ig.addrs[ip.Unmap()] = true
	}
	for i, p := range g.Prefixes {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			return nil, config.Errorf(fmt.Sprintf("spec.prefixes[%d]", i), "must be a CIDR prefix: %w", err)
		}
		ig.prefixes = append(ig.prefixes, pfx.Masked())
	}
	for i, r := range g.Ranges {
		b, err1 := netip.ParseAddr(r.Begin)
		e, err2 := netip.ParseAddr(r.End)
		if err1 != nil || err2 != nil || b.Unmap().Is4() != e.Unmap().Is4() || e.Less(b) {
			return nil, config.Errorf(fmt.Sprintf("spec.ranges[%d]", i), "must be two addresses of one family, begin <= end")
		}
		ig.ranges = append(ig.ranges, [2]netip.Addr{b.Unmap(), e.Unmap()})
	}
	return ig, nil
}

// Contains reports whether ip is in the group.
func (g *IPGroup) Contains(ip netip.Addr) bool {
	ip = ip.Unmap()
	if g.addrs[ip] {
		return true
	}
	for _, p := range g.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	for _, r := range g.ranges {
		if r[0].BitLen() == ip.BitLen() && r[0].Compare(ip) <= 0 && ip.Compare(r[1]) <= 0 {
			return true
		}
	}
	return false
}

func (st *state) ipGroupLib() *lua.LTable {
	t := st.L.NewTable()
	st.bind(t, "avi.ipgroup.", "contains", mAll, func(st *state, L *lua.LState) int {
		name := L.CheckString(1)
		if !st.set.ipGroups[name] {
			L.RaiseError("IP group %q is not in the ip_group_refs of datascript set %q", name, st.set.name)
		}
		g := st.c.env.IPGroups[name]
		if g == nil {
			L.RaiseError("IP group %q does not exist", name)
		}
		ip, err := netip.ParseAddr(L.CheckString(2))
		L.Push(lua.LBool(err == nil && g.Contains(ip)))
		return 1
	})
	return t
}
