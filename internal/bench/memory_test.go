package bench

import (
	"errors"
	"os"
	"testing"
)

func TestParseVmRSS(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr bool
	}{
		{"kernel format", "Name:\tbench\nVmPeak:\t  2000 kB\nVmRSS:\t    1234 kB\nThreads:\t8\n", 1234 << 10, false},
		{"zero", "VmRSS:\t0 kB\n", 0, false},
		{"missing", "Name:\tbench\n", 0, true},
		{"empty", "", 0, true},
		{"other unit", "VmRSS:\t12 MB\n", 0, true},
		{"no unit", "VmRSS:\t12\n", 0, true},
		{"not a number", "VmRSS:\tmany kB\n", 0, true},
		{"negative", "VmRSS:\t-5 kB\n", 0, true},
		{"overflow", "VmRSS:\t99999999999999999999 kB\n", 0, true},
		{"too large to shift", "VmRSS:\t9223372036854775807 kB\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVmRSS([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
	if _, err := ParseVmRSS([]byte("Name: x\n")); !errors.Is(err, ErrNoVmRSS) {
		t.Errorf("missing line: got %v, want ErrNoVmRSS", err)
	}
}

func FuzzParseVmRSS(f *testing.F) {
	f.Add([]byte("VmRSS:\t    1234 kB\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		n, err := ParseVmRSS(in)
		if err == nil && n < 0 {
			t.Errorf("negative RSS %d without error", n)
		}
	})
}

func TestPerSession(t *testing.T) {
	before := Mem{RSS: 1000, Heap: 100, Stacks: 50}
	after := Mem{RSS: 3000, Heap: 500, Stacks: 250}
	tests := []struct {
		name        string
		n           int
		rss, goWant float64
	}{
		{"two sessions", 2, 1000, 300},
		{"no sessions", 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rss, goBytes := PerSession(before, after, tt.n)
			if rss != tt.rss || goBytes != tt.goWant {
				t.Errorf("got %v RSS, %v Go, want %v, %v", rss, goBytes, tt.rss, tt.goWant)
			}
		})
	}
	if got, want := KiB(1536), "1.5 KiB"; got != want {
		t.Errorf("KiB: got %q, want %q", got, want)
	}
}

func TestReadMem(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	m, err := ReadMem()
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS <= 0 || m.Heap <= 0 || m.Stacks <= 0 || m.Goroutines <= 0 {
		t.Errorf("got %+v, want every figure positive", m)
	}
}
