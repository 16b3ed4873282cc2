// Package lockedproc starts test servers that must die with the test
// process (Linux's Pdeathsig) without dying early.
//
// Pdeathsig fires when the *thread* that started the process ends, not
// the process. A Go thread ends when a goroutine that locked it returns
// still locked, which the host's plugin spawner does at every Close. A
// server started from an ordinary goroutine is therefore SIGKILLed at
// some unrelated moment of the test run. Start keeps the starting thread
// for as long as the server runs.
package lockedproc

import (
	"os/exec"
	"runtime"
)

// Start starts cmd from a goroutine that locks its OS thread and waits
// for cmd there, so the thread outlives the process. The channel gets
// cmd.Wait's result when the process exits.
func Start(cmd *exec.Cmd) (exited <-chan error, err error) {
	started := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends after the process
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		done <- cmd.Wait()
	}()
	return done, <-started
}
