// Command knhk-plugin-azure is knhk's Azure Key Vault provider plugin. The knhk host starts it; it is not run by hand.
package main

import (
	"github.com/knhk/knhk/plugins/azure"
	"github.com/knhk/knhk/shared"
)

func main() { shared.Main(azure.New(azure.Config{})) }
