// Command semconv-doc writes docs/telemetry.md, the Markdown tables of
// knhk's telemetry registry (package semconv). Run it after changing the
// registry, from the repository root:
//
//	go run ./semconv/cmd/semconv-doc
//
// or as `go generate ./semconv`. -registry DIR reads a registry directory
// instead of the one built into package semconv; -o FILE writes elsewhere
// ("-" for stdout).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/knhk/knhk/semconv"
)

func main() {
	out := flag.String("o", semconv.DocFile, "the Markdown file to write, - for stdout")
	dir := flag.String("registry", "", "a registry directory (manifest.yaml, model/) instead of the built-in one")
	flag.Parse()
	if err := run(*out, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "semconv-doc:", err)
		os.Exit(1)
	}
}

func run(out, dir string) error {
	load := semconv.Default
	if dir != "" {
		load = func() (*semconv.Registry, error) { return semconv.LoadDir(dir) }
	}
	r, err := load()
	if err != nil {
		return fmt.Errorf("loading the registry: %w", err)
	}
	md := semconv.Markdown(r)
	if out == "-" {
		_, err = os.Stdout.Write(md)
		return err
	}
	if err := os.WriteFile(out, md, 0o644); err != nil {
		return fmt.Errorf("writing the Markdown: %w", err)
	}
	return nil
}
