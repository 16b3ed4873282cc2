// Command knhk-plugin-fake is knhk's fake provider plugin. The knhk host starts it; it is not run by hand.
package main

import (
	"os"

	"github.com/knhk/knhk/plugins/fake"
	"github.com/knhk/knhk/shared"
)

func main() {
	if err := shared.Serve(fake.New(fake.Config{})); err != nil {
		shared.Logger().Error("knhk-plugin-fake cannot serve", "error", err)
		os.Exit(1)
	}
}
