package integrations

import (
	"testing"

	"github.com/vigilhq/vigil/vigiltest"
)

// vigilBin is the vigil binary the end-to-end tests run.
var vigilBin string

func TestMain(m *testing.M) { vigiltest.Main(m, &vigilBin) }
