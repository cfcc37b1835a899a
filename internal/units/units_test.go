package units

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"0", 0},
		{"0s", 0},
		{"90s", 90 * time.Second},
		{"1h30m", 90 * time.Minute},
		{"1.5h", 90 * time.Minute},
		{"250ms", 250 * time.Millisecond},
		{" 5m ", 5 * time.Minute},
		{"1d", 24 * time.Hour},
		{"7d", 7 * 24 * time.Hour},
		{"1.5d", 36 * time.Hour},
		{"1d12h", 36 * time.Hour},
		{"2d3h4m5s", 2*24*time.Hour + 3*time.Hour + 4*time.Minute + 5*time.Second},
		{"-1d", -24 * time.Hour},
		{"+1d1h", 25 * time.Hour},
		{"-90s", -90 * time.Second},
		{"106751d", 106751 * 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if err != nil {
				t.Fatalf("ParseDuration(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseDuration(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseDuration_Invalid(t *testing.T) {
	for _, in := range []string{
		"", " ", "5", "d", "1dd", "1h1d", "1d-1h", "1.2.3d", "5 minutes", "1y",
		"106752d",                 // overflows int64 nanoseconds
		"0.0000000000001d",        // not a whole nanosecond
		"9999999999999999999999h", // overflow in Go syntax
		"1e3d", "0x10d", "1_000d", "-", "--1s",
	} {
		t.Run(in, func(t *testing.T) {
			got, err := ParseDuration(in)
			if err == nil {
				t.Fatalf("ParseDuration(%q) = %v, want an error", in, got)
			}
			if !strings.Contains(err.Error(), "invalid duration") {
				t.Errorf("ParseDuration(%q) error %q, want it to say \"invalid duration\"", in, err)
			}
		})
	}
}

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"1024", 1024},
		{"1B", 1},
		{"100kB", 100_000},
		{"100KB", 100_000},
		{"100k", 100_000},
		{"10MB", 10_000_000},
		{"10GB", 10_000_000_000},
		{"10gb", 10_000_000_000},
		{"1.5GB", 1_500_000_000},
		{"2TB", 2_000_000_000_000},
		{"1PB", 1_000_000_000_000_000},
		{"1KiB", 1024},
		{"512MiB", 512 << 20},
		{"512mib", 512 << 20},
		{"512Mi", 512 << 20},
		{"1.5KiB", 1536},
		{"1GiB", 1 << 30},
		{"3TiB", 3 << 40},
		{"1PiB", 1 << 50},
		{"2 GiB", 2 << 30},
		{" 7 ", 7},
		{".5KB", 500},
		{"5.KB", 5000},
		{"8191PiB", 8191 << 50},
		{"9223372036854775807", math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseByteSize(tt.in)
			if err != nil {
				t.Fatalf("ParseByteSize(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseByteSize(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseByteSize_Invalid(t *testing.T) {
	tests := []struct {
		in, wantMsg string
	}{
		{"", "invalid byte size"},
		{"GB", "invalid byte size"},
		{"-5MB", "invalid byte size"},
		{"+5MB", "invalid byte size"},
		{"10XB", "unknown unit"},
		{"10 bytes", "unknown unit"},
		{"10iB", "unknown unit"},
		{"10GBB", "unknown unit"},
		{"1.2.3GB", "invalid byte size"},
		{"1e3", "unknown unit"},
		{"0.5", "not a whole number"},
		{"1.0001KB", "not a whole number"},
		{"8192PiB", "too large"},
		{"9223372036854775808", "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseByteSize(tt.in)
			if err == nil {
				t.Fatalf("ParseByteSize(%q) = %d, want an error", tt.in, got)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("ParseByteSize(%q) error %q, want it to contain %q", tt.in, err, tt.wantMsg)
			}
		})
	}
}

func FuzzByteSize(f *testing.F) {
	for _, s := range []string{"10GB", "1.5KiB", "0", "8191PiB", "-1", ".5k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseByteSize(s)
		if err == nil && n < 0 {
			t.Fatalf("ParseByteSize(%q) = %d, want a non-negative size", s, n)
		}
	})
}

func FuzzDuration(f *testing.F) {
	for _, s := range []string{"1d12h", "90s", "0", "-1.5d", "106751d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil || strings.ContainsRune(s, 'd') {
			return
		}
		if want, goErr := time.ParseDuration(strings.TrimSpace(s)); goErr != nil || want != d {
			t.Fatalf("ParseDuration(%q) = %v, time.ParseDuration gives %v, %v", s, d, want, goErr)
		}
	})
}

func TestParseDecimal(t *testing.T) {
	tests := []struct {
		in   string
		want string // big.Rat's RatString; "" for an error
	}{
		{"0", "0"}, {"42", "42"}, {"1.5", "3/2"}, {".5", "1/2"}, {"5.", "5"}, {"007", "7"},
		{"", ""}, {".", ""}, {"-1", ""}, {"+1", ""}, {"1e3", ""}, {"1/2", ""}, {"1.2.3", ""}, {" 1", ""}, {"0x10", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := ParseDecimal(tt.in)
			switch {
			case tt.want == "" && err == nil:
				t.Errorf("ParseDecimal(%q) = %s, want an error", tt.in, r.RatString())
			case tt.want != "" && err != nil:
				t.Errorf("ParseDecimal(%q): %v, want %s", tt.in, err, tt.want)
			case tt.want != "" && r.RatString() != tt.want:
				t.Errorf("ParseDecimal(%q) = %s, want %s", tt.in, r.RatString(), tt.want)
			}
		})
	}
}
