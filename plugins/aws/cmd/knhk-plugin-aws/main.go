// Command knhk-plugin-aws is knhk's AWS KMS provider plugin. The knhk host starts it; it is not run by hand.
package main

import (
	"os"

	"github.com/knhk/knhk/plugins/aws"
	"github.com/knhk/knhk/shared"
)

func main() {
	if err := shared.Serve(aws.New(aws.Config{})); err != nil {
		shared.Logger().Error("knhk-plugin-aws cannot serve", "error", err)
		os.Exit(1)
	}
}
