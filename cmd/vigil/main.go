// Command vigil is the single vigil binary: the server (vigil serve) and the
// client commands. See package cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/vigilhq/vigil/cli"
	"github.com/vigilhq/vigil/runner"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == runner.ShimArg {
		runner.ShimMain()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
