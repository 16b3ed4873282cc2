// Command knhk-plugin-vault is the knhk provider plugin for HashiCorp Vault
// Transit. The host starts it; it is not meant to be run by hand.
package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/go-hclog"

	"github.com/knhk/knhk/plugins/vault"
	"github.com/knhk/knhk/shared"
)

func main() {
	log := hclog.New(&hclog.LoggerOptions{Name: "vault", Level: hclog.LevelFromString(os.Getenv("KNHK_LOG_LEVEL")), JSONFormat: true})
	p := vault.New(vault.Config{Logger: log})
	defer p.Close()
	if err := shared.Serve(p, shared.WithLogger(log)); err != nil {
		fmt.Fprintln(os.Stderr, "knhk-plugin-vault:", err)
		os.Exit(1)
	}
}
