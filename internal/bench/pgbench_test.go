package bench

import (
	"errors"
	"testing"
)

// pg15Output is what pgbench 15 prints for -S.
const pg15Output = `pgbench (15.13 (Debian 15.13-0+deb12u1))
transaction type: <builtin: select only>
scaling factor: 1
query mode: simple
number of clients: 8
number of threads: 2
maximum number of tries: 1
duration: 2 s
number of transactions actually processed: 8123
number of failed transactions: 0 (0.000%)
latency average = 1.971 ms
initial connection time = 45.250 ms
tps = 4058.882931 (without initial connection time)
`

// pg13Output is the older two-line form.
const pg13Output = `tps = 3900.100000 (including connections establishing)
tps = 4000.500000 (excluding connections establishing)
`

func TestParseTPS(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    float64
		wantErr error
	}{
		{"pg15", pg15Output, 4058.882931, nil},
		{"pg13 takes excluding", pg13Output, 4000.5, nil},
		{"integer", "tps = 12 (without initial connection time)\n", 12, nil},
		{"only including", "tps = 3900.1 (including connections establishing)\n", 0, ErrNoTPS},
		{"failed run", "pgbench: error: connection to server failed\n", 0, ErrNoTPS},
		{"empty", "", 0, ErrNoTPS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTPS([]byte(tt.in))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzParseTPS(f *testing.F) {
	f.Add([]byte(pg15Output))
	f.Add([]byte(pg13Output))
	f.Fuzz(func(t *testing.T, in []byte) {
		tps, err := ParseTPS(in)
		if err == nil && tps < 0 {
			t.Errorf("negative tps %v without error", tps)
		}
	})
}
