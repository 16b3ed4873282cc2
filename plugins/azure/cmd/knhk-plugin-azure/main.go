// Command knhk-plugin-azure is knhk's Azure Key Vault provider plugin. The knhk host starts it; it is not run by hand.
package main

import (
	"os"

	"github.com/knhk/knhk/plugins/azure"
	"github.com/knhk/knhk/shared"
)

func main() {
	if err := shared.Serve(azure.New(azure.Config{})); err != nil {
		shared.Logger().Error("knhk-plugin-azure cannot serve", "error", err)
		os.Exit(1)
	}
}
