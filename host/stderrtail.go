package host

import (
	"strings"
	"sync"
)

// stderrTail keeps the last lines a plugin wrote to stderr, so a failed
// handshake can say what the program printed (go-plugin's own message for
// a wrong magic cookie, a panic, a usage line...).
type stderrTail struct {
	mu    sync.Mutex
	lines []string
}

// Bounds on what is kept: lines, and bytes per line.
const (
	tailLines = 3
	maxTail   = 300
)

func (s *stderrTail) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, line := range strings.Split(string(p), "\n") {
		// JSON lines are the plugin's log, which the host logger shows.
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "{") {
			if len(line) > maxTail {
				line = line[:maxTail] + "..."
			}
			s.lines = append(s.lines, line)
			if len(s.lines) > tailLines {
				s.lines = s.lines[1:]
			}
		}
	}
	return len(p), nil
}

// hint is the last line as an error suffix, or "".
func (s *stderrTail) hint() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lines) == 0 {
		return ""
	}
	return "; its last output on stderr: " + strings.Join(s.lines, " / ")
}

// contains reports whether a kept line contains s.
func (s *stderrTail) contains(sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}
