package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConsoleToken: the loopback face's token file is created private,
// reused, and refused when others could read it or it is too short.
func TestConsoleToken(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	tok, err := consoleToken(path)
	if err != nil || len(tok) < 16 {
		t.Fatalf("consoleToken (new file) = %q, %v", tok, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("new token file mode %v, want 0600", st.Mode().Perm())
	}
	if again, err := consoleToken(path); err != nil || again != tok {
		t.Errorf("consoleToken (existing) = %q, %v; want the same token", again, err)
	}
	tests := []struct {
		name, content string
		mode          os.FileMode
		want          string
	}{
		{"group readable", "0123456789abcdef0123", 0o640, "readable by its owner only"},
		{"world readable", "0123456789abcdef0123", 0o644, "chmod 600"},
		{"short", "short", 0o600, "at least 16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name)
			os.WriteFile(p, []byte(tt.content), tt.mode)
			os.Chmod(p, tt.mode)
			if _, err := consoleToken(p); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("consoleToken = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := consoleToken(filepath.Join(dir, "missing-dir", "token")); err == nil {
		t.Error("consoleToken in a missing directory succeeded")
	}
}
