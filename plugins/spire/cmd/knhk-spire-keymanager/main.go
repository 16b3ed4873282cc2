// Command knhk-spire-keymanager is a SPIRE server KeyManager plugin that
// keeps SPIRE's X.509 CA and JWT signing keys in any knhk provider (Vault
// Transit, AWS KMS, Azure Key Vault, the fake, third-party plugins). SPIRE
// server starts it (plugin_cmd in its KeyManager "knhk" block); it is not
// run by hand. See the package documentation of
// github.com/knhk/knhk/plugins/spire for plugin_data.
package main

import (
	"github.com/spiffe/spire-plugin-sdk/pluginmain"
	keymanagerv1 "github.com/spiffe/spire-plugin-sdk/proto/spire/plugin/server/keymanager/v1"
	configv1 "github.com/spiffe/spire-plugin-sdk/proto/spire/service/common/config/v1"

	"github.com/knhk/knhk/plugins/spire"
)

func main() {
	p := spire.New()
	pluginmain.Serve(
		keymanagerv1.KeyManagerPluginServer(p),
		configv1.ConfigServiceServer(p),
	)
}
