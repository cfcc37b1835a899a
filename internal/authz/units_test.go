package authz

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "1h", want: time.Hour},
		{in: "90s", want: 90 * time.Second},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "2d", want: 48 * time.Hour},
		{in: "1.5d", want: 36 * time.Hour},
		{in: "90", want: 90 * time.Second},
		{in: "0.5", want: 500 * time.Millisecond},
		{in: "0", want: 0},
		{in: " 10m ", want: 10 * time.Minute},
		{in: "", wantErr: true},
		{in: "   ", wantErr: true},
		{in: "d", wantErr: true},
		{in: "-1h", wantErr: true},
		{in: "-5", wantErr: true},
		{in: "-2d", wantErr: true},
		{in: "1x", wantErr: true},
		{in: "1e3", wantErr: true},
		{in: "1/2", wantErr: true},
		{in: "1.2.3", wantErr: true},
		{in: "999999999999d", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseDuration(%q) = %v, want an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDuration(%q): got error %v, want %v", tt.in, err, tt.want)
			}
			if got != tt.want {
				t.Errorf("ParseDuration(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "10GB", want: 10_000_000_000},
		{in: "512MiB", want: 512 << 20},
		{in: "1.5GB", want: 1_500_000_000},
		{in: "1.5KiB", want: 1536},
		{in: "4096", want: 4096},
		{in: "4096B", want: 4096},
		{in: "1kb", want: 1000},
		{in: "1KB", want: 1000},
		{in: "1kib", want: 1024},
		{in: "2 GiB", want: 2 << 30},
		{in: "1TB", want: 1_000_000_000_000},
		{in: "1TiB", want: 1 << 40},
		{in: "3mb", want: 3_000_000},
		{in: "0", want: 0},
		{in: "", wantErr: true},
		{in: "GB", wantErr: true},
		{in: "10XB", wantErr: true},
		{in: "10K", want: 10_000}, // as in the configuration file: the B is optional
		{in: "-1GB", wantErr: true},
		{in: "1.5B", wantErr: true},
		{in: "0.0001KB", wantErr: true},
		{in: "1e9", wantErr: true},
		{in: "99999999999TB", wantErr: true},
		{in: "1..5GB", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseByteSize(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseByteSize(%q) = %d, want an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseByteSize(%q): got error %v, want %d", tt.in, err, tt.want)
			}
			if got != tt.want {
				t.Errorf("ParseByteSize(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}
