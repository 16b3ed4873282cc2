package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/knhk/knhk/cmd/knhk-host/internal/cli"
)

func main() {
	// Ctrl-C or SIGTERM cancels the command; Run still stops the plugins.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
