package cli

import (
	"encoding/json"
	"fmt"
	"io"
)

// Output formats for -o.
const (
	formatText = "text"
	formatJSON = "json"
)

// printer writes a command's result on stdout: v as indented JSON under
// -o json, or the text the command renders otherwise.
type printer struct {
	w    io.Writer
	json bool
}

// print writes v as JSON, or calls text to write the text form.
func (p printer) print(v any, text func(w io.Writer) error) error {
	if p.json {
		out, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("encode output: %w", err)
		}
		_, err = fmt.Fprintf(p.w, "%s\n", out)
		return writeErr(err)
	}
	return writeErr(text(p.w))
}

// writeErr names a failed write to stdout (a closed pipe, a full disk).
func writeErr(err error) error {
	if err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}
