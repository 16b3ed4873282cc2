// Command knhk-plugin-aws is knhk's AWS KMS provider plugin. The knhk host
// starts it; it is not meant to be run by hand.
package main

import (
	"fmt"
	"os"

	awskms "github.com/knhk/knhk/plugins/aws"
	"github.com/knhk/knhk/shared"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := shared.Serve(awskms.New(awskms.Config{Version: version})); err != nil {
		fmt.Fprintln(os.Stderr, "knhk-plugin-aws:", err)
		os.Exit(1)
	}
}
