package app

import (
	"os"
	"testing"

	"github.com/vigilhq/vigil/runner"
)

// TestMain lets the test binary act as the sandbox shim, since the runner
// re-executes its own binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == runner.ShimArg {
		runner.ShimMain()
	}
	os.Exit(m.Run())
}
