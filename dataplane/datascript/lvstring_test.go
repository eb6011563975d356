package datascript

import lua "github.com/yuin/gopher-lua"

func lvString(v lua.LValue) string {
	if v == nil || v == lua.LNil {
		return ""
	}
	return v.String()
}
