package testkit

import (
	"strings"
	"sync"
)

// LogTail is an io.Writer for a slog text handler, one record per Write,
// that keeps the last Max lines above INFO and the INFO lines Keep accepts,
// and counts the other INFO lines: enough to show why a long test failed
// without holding every connection's line. The zero value keeps the last
// 100 lines and no INFO line. It is safe for concurrent use.
type LogTail struct {
	// Max is how many lines are kept, the newest; 0 means 100.
	Max int
	// Keep selects INFO lines worth keeping too; nil keeps none.
	Keep func(line string) bool

	mu    sync.Mutex
	lines []string
	info  int
}

// Write keeps or counts the record in p.
func (l *LogTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	line := strings.TrimSpace(string(p))
	if strings.Contains(line, "level=INFO") && (l.Keep == nil || !l.Keep(line)) {
		l.info++
		return len(p), nil
	}
	l.lines = append(l.lines, line)
	if limit := l.limit(); len(l.lines) > limit {
		l.lines = l.lines[len(l.lines)-limit:]
	}
	return len(p), nil
}

func (l *LogTail) limit() int {
	if l.Max > 0 {
		return l.Max
	}
	return 100
}

// Snapshot returns a copy of the kept lines and the count of the others.
func (l *LogTail) Snapshot() (lines []string, info int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...), l.info
}

// Take returns the kept lines and forgets them.
func (l *LogTail) Take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.lines
	l.lines = nil
	return out
}
