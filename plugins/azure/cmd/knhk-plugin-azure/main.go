// Command knhk-plugin-azure is the knhk provider plugin for Azure Key
// Vault and Managed HSM. The knhk host starts it; it is not run by hand.
package main

import (
	"fmt"
	"os"

	azlog "github.com/Azure/azure-sdk-for-go/sdk/azcore/log"
	"github.com/hashicorp/go-hclog"

	"github.com/knhk/knhk/plugins/azure"
	"github.com/knhk/knhk/shared"
)

func main() {
	level := hclog.LevelFromString(os.Getenv("KNHK_LOG_LEVEL"))
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	log := hclog.New(&hclog.LoggerOptions{Name: azure.Name, Level: level, JSONFormat: true})
	// The Azure SDK's own log (requests, responses, retries) goes to the
	// trace level; the SDK redacts Authorization headers.
	if log.IsTrace() {
		azlog.SetListener(func(ev azlog.Event, msg string) { log.Trace(msg, "event", string(ev)) })
	}
	if err := shared.Serve(azure.New(azure.Config{Logger: log}), shared.WithLogger(log)); err != nil {
		fmt.Fprintln(os.Stderr, "knhk-plugin-azure:", err)
		os.Exit(1)
	}
}
