// Package integrations holds vigil's bundled ControlScripts, one folder
// each (a manifest, the script and a README), embedded in the binary and
// installed with `vigil integrations install NAME`.
package integrations
