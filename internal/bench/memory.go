package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// Mem is one reading of this process's memory after a full garbage
// collection. All figures are bytes.
type Mem struct {
	// RSS is VmRSS from /proc/self/status: everything resident, including
	// memory the Go runtime has not yet returned to the OS. Zero when
	// /proc is unavailable.
	RSS int64
	// Heap is the live Go heap (runtime.MemStats.HeapAlloc after GC).
	Heap int64
	// Stacks is the memory of goroutine stacks (StackInuse).
	Stacks int64
	// Goroutines is runtime.NumGoroutine().
	Goroutines int
}

// GoBytes is Heap+Stacks: the Go-managed memory a session can own.
func (m Mem) GoBytes() int64 { return m.Heap + m.Stacks }

// ReadMem collects garbage, returns freed memory to the OS and reads the
// figures. It stops the world twice; do not call it inside a timed loop.
func ReadMem() (Mem, error) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := Mem{Heap: int64(ms.HeapAlloc), Stacks: int64(ms.StackInuse), Goroutines: runtime.NumGoroutine()}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return m, fmt.Errorf("bench: read RSS: %w", err)
	}
	if m.RSS, err = ParseVmRSS(status); err != nil {
		return m, err
	}
	return m, nil
}

// ErrNoVmRSS is returned by ParseVmRSS when the input has no VmRSS line.
var ErrNoVmRSS = errors.New("bench: no VmRSS line in /proc/self/status")

// ParseVmRSS returns the VmRSS figure of a /proc/<pid>/status file in
// bytes ("VmRSS:     12345 kB"). Only the kB unit, which the kernel always
// uses, is accepted.
func ParseVmRSS(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("bench: malformed VmRSS line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil || kb < 0 || kb > 1<<43 {
			return 0, fmt.Errorf("bench: malformed VmRSS value %q", fields[0])
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("bench: read status: %w", err)
	}
	return 0, ErrNoVmRSS
}

// PerSession returns the growth from before to after divided by n sessions,
// for RSS and Go memory. n <= 0 gives zeros.
func PerSession(before, after Mem, n int) (rss, goBytes float64) {
	if n <= 0 {
		return 0, 0
	}
	return float64(after.RSS-before.RSS) / float64(n), float64(after.GoBytes()-before.GoBytes()) / float64(n)
}

// KiB formats bytes as KiB with one decimal.
func KiB(b float64) string { return fmt.Sprintf("%.1f KiB", b/1024) }
