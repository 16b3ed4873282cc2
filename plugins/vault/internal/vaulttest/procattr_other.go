//go:build !linux

package vaulttest

import "os/exec"

// dieWithParent is Linux-only; elsewhere Stop must run.
func dieWithParent(*exec.Cmd) {}
