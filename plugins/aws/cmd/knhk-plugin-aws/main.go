// Command knhk-plugin-aws is knhk's AWS KMS provider plugin. The knhk host starts it; it is not run by hand.
package main

import (
	"github.com/knhk/knhk/plugins/aws"
	"github.com/knhk/knhk/shared"
)

func main() { shared.Main(aws.New(aws.Config{})) }
