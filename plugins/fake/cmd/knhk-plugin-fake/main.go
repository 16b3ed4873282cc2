// Command knhk-plugin-fake is the fake knhk provider plugin: software keys
// and fault injection for tests. The knhk host launches it; it is not run by
// hand. See package github.com/knhk/knhk/plugins/fake for its parameters.
package main

import (
	"fmt"
	"os"

	"github.com/knhk/knhk/plugins/fake"
	"github.com/knhk/knhk/shared"
)

func main() {
	if err := shared.Serve(fake.New()); err != nil {
		fmt.Fprintln(os.Stderr, "knhk-plugin-fake:", err)
		os.Exit(1)
	}
}
