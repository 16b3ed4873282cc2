// Command knhk-plugin-fake is knhk's fake provider plugin. The knhk host starts it; it is not run by hand.
package main

import (
	"github.com/knhk/knhk/plugins/fake"
	"github.com/knhk/knhk/shared"
)

func main() { shared.Main(fake.New(fake.Config{})) }
