//go:build !linux

package spire_test

import "os/exec"

// dieWithParent is Linux-only; elsewhere the test's cleanup must run.
func dieWithParent(*exec.Cmd) {}
