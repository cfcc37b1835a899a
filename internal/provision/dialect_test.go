package provision

import "testing"

// TestDetectDialect: the version string alone picks the dialect, and only
// PostgreSQL has a warm path.
func TestDetectDialect(t *testing.T) {
	tests := []struct {
		version  string
		want     string
		wantWarm bool
	}{
		{"PostgreSQL 15.8 on x86_64-pc-linux-gnu, compiled by gcc", postgresName, true},
		{"PostgreSQL 18.0 (Debian 18.0-1.pgdg120+1) on x86_64-pc-linux-gnu", postgresName, true},
		{"CockroachDB CCL v23.2.0 (x86_64-pc-linux-gnu, built 2024/01/01)", cockroachName, false},
	}
	for _, tt := range tests {
		t.Run(tt.want+" "+tt.version[:20], func(t *testing.T) {
			d := detectDialect(&Provisioner{adminDB: "defaultdb"}, tt.version)
			if d.String() != tt.want {
				t.Errorf("got %s, want %s", d, tt.want)
			}
			if _, warm := d.(warmPath); warm != tt.wantWarm {
				t.Errorf("warm path: got %v, want %v", warm, tt.wantWarm)
			}
		})
	}
}
