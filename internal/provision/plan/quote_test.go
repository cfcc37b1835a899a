package plan

import (
	"testing"
	"time"
)

func TestQuoteLiteral(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "'plain'"},
		{"", "''"},
		{"o'brien", "'o''brien'"},
		{`back\slash`, `E'back\\slash'`},
		{`\'; DROP`, `E'\\''; DROP'`},
		{"nul\x00byte", "'nulbyte'"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := QuoteLiteral(tt.in); got != tt.want {
				t.Errorf("QuoteLiteral(%q): got %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestQuoteIdent(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", `"plain"`},
		{"", `""`},
		{`a"b`, `"a""b"`},
		{"Upper Case", `"Upper Case"`},
		{"nul\x00byte", `"nulbyte"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := QuoteIdent(tt.in); got != tt.want {
				t.Errorf("QuoteIdent(%q): got %s, want %s", tt.in, got, tt.want)
			}
		})
	}
	if got, want := QuoteQualified("s", `t"x`), `"s"."t""x"`; got != want {
		t.Errorf("QuoteQualified: got %s, want %s", got, want)
	}
}

func TestDoBlock(t *testing.T) {
	tests := []struct{ body, wantTag string }{
		{"BEGIN NULL; END", "$wp$"},
		{"BEGIN RAISE NOTICE '$wp$'; END", "$wp0$"},
		{"BEGIN RAISE NOTICE '$wp$ $wp0$'; END", "$wp1$"},
	}
	for _, tt := range tests {
		t.Run(tt.wantTag, func(t *testing.T) {
			got := doBlock(tt.body)
			if want := "DO " + tt.wantTag + "\n" + tt.body + "\n" + tt.wantTag; got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

func TestTimestampLiteral(t *testing.T) {
	tests := []struct {
		in   time.Time
		want string
	}{
		{time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), "2030-01-02 03:04:05+00"},
		{time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC), "2030-01-02 03:04:05.123456+00"},
		{time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600)), "2030-01-02 02:04:05+00"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := TimestampLiteral(tt.in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
