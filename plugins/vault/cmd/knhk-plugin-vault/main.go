// Command knhk-plugin-vault is knhk's HashiCorp Vault Transit provider plugin. The knhk host starts it; it is not run by hand.
package main

import (
	"os"

	"github.com/knhk/knhk/plugins/vault"
	"github.com/knhk/knhk/shared"
)

func main() {
	if err := shared.Serve(vault.New(vault.Config{})); err != nil {
		shared.Logger().Error("knhk-plugin-vault cannot serve", "error", err)
		os.Exit(1)
	}
}
