// Package python holds the Python SDK for ControlScripts; its tests run from Go.
package python
