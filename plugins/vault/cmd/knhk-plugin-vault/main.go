// Command knhk-plugin-vault is knhk's HashiCorp Vault Transit provider plugin. The knhk host starts it; it is not run by hand.
package main

import (
	"github.com/knhk/knhk/plugins/vault"
	"github.com/knhk/knhk/shared"
)

func main() { shared.Main(vault.New(vault.Config{})) }
