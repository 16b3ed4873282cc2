package cli_test

import (
	"context"
	"fmt"
	"os"

	"github.com/knhk/knhk/cmd/knhk-host/internal/cli"
)

// Run is the whole command line; main passes it os.Args[1:] and the
// standard streams and exits with what it returns. Here a usage error goes
// to the writer given as stderr, and Run returns exit status 2.
func ExampleRun() {
	code := cli.Run(context.Background(), []string{"sign", "--in", "message.txt"}, os.Stdin, os.Stdout, os.Stdout)
	fmt.Println("exit status", code)
	// Output:
	// knhk-host sign: missing --key (pass --key PROVIDER:KEYID (e.g. --key 'fake:demo?state=/tmp/keys.json') or a key name from --config)
	// exit status 2
}
