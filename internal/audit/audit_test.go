package audit

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/waypoint-proxy/waypoint/internal/testkit"
)

// liveness bounds waits in tests; it is never a performance threshold.
const liveness = 10 * time.Second

// decodeLines parses every line of s as a JSON object.
func decodeLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d is not JSON: %v: %q", len(out)+1, err, sc.Text())
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLogger_WritesJSONLines(t *testing.T) {
	var buf testkit.SyncBuffer
	l := New(&buf)
	when := time.Date(2026, 3, 4, 5, 6, 7, 8, time.FixedZone("x", 3600))
	l.Log(Entry{
		Time: when, Session: Session{Conn: "c1", Listener: "pg-main", Login: "alice@example.com",
			Machine: "laptop", NodeID: "n123", Database: "app", Role: "wp_alice"},
		Kind: KindQuery, SQL: "SELECT '<a>' & \"b\"\n",
	})
	l.Log(Entry{Kind: KindParse, SQL: ""})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := decodeLines(t, buf.String())
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2: %q", len(lines), buf.String())
	}
	want := map[string]any{
		"time": "2026-03-04T04:06:07.000000008Z", "conn": "c1", "listener": "pg-main",
		"login": "alice@example.com", "machine": "laptop", "node_id": "n123", "database": "app",
		"role": "wp_alice", "kind": "query", "sql": "SELECT '<a>' & \"b\"\n",
	}
	if got := fmt.Sprint(lines[0]); got != fmt.Sprint(want) {
		t.Errorf("got %s, want %s", got, fmt.Sprint(want))
	}
	if !strings.Contains(buf.String(), "'<a>' &") {
		t.Errorf("got %q, want SQL without HTML escaping", buf.String())
	}
	second := lines[1]
	if _, ok := second["login"]; ok {
		t.Errorf("got login in %v, want empty fields omitted", second)
	}
	if sql, ok := second["sql"]; !ok || sql != "" {
		t.Errorf("got sql %v (present %v), want \"\" present", sql, ok)
	}
	ts, err := time.Parse(time.RFC3339Nano, second["time"].(string))
	if err != nil || ts.IsZero() {
		t.Errorf("got time %v (%v), want a zero Entry.Time filled with now", second["time"], err)
	}
}

func TestLogger_TruncatesLongSQL(t *testing.T) {
	euro := "€" // 3 bytes
	tests := []struct {
		name          string
		sql           string
		wantLen       int
		wantTruncated bool
	}{
		{"short", "SELECT 1", 8, false},
		{"exactly MaxSQL", strings.Repeat("x", MaxSQL), MaxSQL, false},
		{"one byte over", strings.Repeat("x", MaxSQL+1), MaxSQL, true},
		{"far over", strings.Repeat("x", 3*MaxSQL), MaxSQL, true},
		{"rune straddles the cut", strings.Repeat("x", MaxSQL-1) + euro, MaxSQL - 1, true},
		{"rune ends at the cut", strings.Repeat("x", MaxSQL-3) + euro + "y", MaxSQL, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf testkit.SyncBuffer
			l := New(&buf)
			l.Log(Entry{Kind: KindQuery, SQL: tt.sql})
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			lines := decodeLines(t, buf.String())
			if len(lines) != 1 {
				t.Fatalf("got %d lines, want 1", len(lines))
			}
			sql := lines[0]["sql"].(string)
			if len(sql) != tt.wantLen {
				t.Errorf("got sql of %d bytes, want %d", len(sql), tt.wantLen)
			}
			if !utf8.ValidString(sql) || strings.ContainsRune(sql, utf8.RuneError) {
				t.Errorf("got sql ending %q, want valid UTF-8 without replacement", sql[max(0, len(sql)-8):])
			}
			truncated, _ := lines[0]["sql_truncated"].(bool)
			if truncated != tt.wantTruncated {
				t.Errorf("got sql_truncated %v, want %v", truncated, tt.wantTruncated)
			}
			if tt.wantTruncated {
				if got := lines[0]["sql_bytes"]; got != float64(len(tt.sql)) {
					t.Errorf("got sql_bytes %v, want %d", got, len(tt.sql))
				}
				if got, want := lines[0]["sql_sha256"], sha256Hex(tt.sql); got != want {
					t.Errorf("got sql_sha256 %v, want %s (of the whole text)", got, want)
				}
			} else if _, ok := lines[0]["sql_sha256"]; ok {
				t.Errorf("got sql_sha256 on an uncut statement, want none")
			}
		})
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestLogger_CapturedEntries: an entry already cut by the tap keeps the
// tap's length and hash of the whole text (which the Logger never saw) and
// loses an incomplete character at the cut; a function call is written with
// its OID and argument count and sizes.
func TestLogger_CapturedEntries(t *testing.T) {
	whole := strings.Repeat("x", MaxSQL-1) + "€ and more"
	tapCut := whole[:MaxSQL] // what pgwire.TapQueries reports: mid-character
	tests := []struct {
		name  string
		entry Entry
		want  map[string]any // fields of the line
	}{
		{
			name: "cut by the tap",
			entry: Entry{Kind: KindQuery, SQL: tapCut, SQLTruncated: true,
				SQLBytes: int64(len(whole)), SQLSHA256: sha256Hex(whole)},
			want: map[string]any{"sql": whole[:MaxSQL-1], "sql_truncated": true,
				"sql_bytes": float64(len(whole)), "sql_sha256": sha256Hex(whole)},
		},
		{
			name:  "uncut SQL ignores stray length and hash",
			entry: Entry{Kind: KindParse, SQL: "SELECT 1", SQLBytes: 99, SQLSHA256: "bogus"},
			want:  map[string]any{"sql": "SELECT 1", "sql_truncated": nil, "sql_bytes": nil, "sql_sha256": nil},
		},
		{
			name: "function call",
			entry: Entry{Kind: KindFunctionCall,
				Function: &FunctionCall{OID: 952, Args: 3, ArgSizes: []int32{4, -1, 0}}},
			want: map[string]any{"kind": "function_call", "sql": "",
				"function": map[string]any{"oid": float64(952), "args": float64(3), "arg_sizes": []any{float64(4), float64(-1), float64(0)}}},
		},
		{
			name:  "statement has no function",
			entry: Entry{Kind: KindQuery, SQL: "SELECT 1"},
			want:  map[string]any{"function": nil},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf testkit.SyncBuffer
			l := New(&buf)
			l.Log(tt.entry)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			lines := decodeLines(t, buf.String())
			if len(lines) != 1 {
				t.Fatalf("got %d lines, want 1", len(lines))
			}
			for k, want := range tt.want {
				if got := lines[0][k]; fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("got %s %v, want %v", k, got, want)
				}
			}
		})
	}
}

// TestLogger_ConcurrentWriters logs from many goroutines at once: every line
// must be one valid JSON object, and written + dropped must equal logged.
func TestLogger_ConcurrentWriters(t *testing.T) {
	const writers, perWriter = 16, 400
	var buf testkit.SyncBuffer
	l := New(&buf)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				l.Log(Entry{
					Session: Session{Conn: fmt.Sprintf("c%d", w)}, Kind: KindQuery,
					SQL: fmt.Sprintf("SELECT %d, '%s'\n-- \"%d\"", i, strings.Repeat("q", i), w),
				})
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := decodeLines(t, buf.String())
	if got, want := int64(len(lines))+l.Dropped(), int64(writers*perWriter); got != want {
		t.Errorf("got %d lines + %d dropped, want %d logged", len(lines), l.Dropped(), want)
	}
	perConn := map[string]int{}
	for _, m := range lines {
		perConn[m["conn"].(string)]++
	}
	if l.Dropped() == 0 && len(perConn) != writers {
		t.Errorf("got lines from %d writers, want %d", len(perConn), writers)
	}
}

// blockingWriter blocks every Write until release is closed.
type blockingWriter struct {
	release chan struct{}
	buf     testkit.SyncBuffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	<-w.release
	return w.buf.Write(p)
}

// TestLogger_DropsInsteadOfBlocking stalls the destination and checks that
// Log keeps returning, drops once the queue is full (by line count or by
// bytes), and that nothing is lost silently: written + dropped == logged.
func TestLogger_DropsInsteadOfBlocking(t *testing.T) {
	tests := []struct {
		name      string
		sql       string
		dropAfter int // drops must have started by this many entries
	}{
		{"line bound", "SELECT 1", 2*QueueLines + 1},
		{"byte bound", strings.Repeat("x", MaxSQL), 2*(QueueBytes/MaxSQL) + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &blockingWriter{release: make(chan struct{})}
			l := New(w)
			logged := make(chan int, 1)
			go func() {
				n := 0
				for l.Dropped() == 0 && n < 4*QueueLines {
					l.Log(Entry{Kind: KindQuery, SQL: tt.sql})
					n++
				}
				logged <- n
			}()
			var n int
			select {
			case n = <-logged:
			case <-time.After(liveness):
				t.Fatal("Log blocked behind a stalled destination")
			}
			if l.Dropped() == 0 || n > tt.dropAfter {
				t.Errorf("got first drop after %d entries (dropped %d), want by %d", n, l.Dropped(), tt.dropAfter)
			}
			close(w.release)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			written := strings.Count(w.buf.String(), "\n")
			if got := int64(written) + l.Dropped(); got != int64(n) {
				t.Errorf("got %d written + %d dropped, want %d logged", written, l.Dropped(), n)
			}
		})
	}
}

// failingWriter fails every Write.
type failingWriter struct{}

var errDiskFull = errors.New("disk full")

func (failingWriter) Write([]byte) (int, error) { return 0, errDiskFull }

func TestLogger_WriteErrorCountsDropsAndIsReported(t *testing.T) {
	l := New(failingWriter{})
	for range 5 {
		l.Log(Entry{SQL: "SELECT 1"})
	}
	err := l.Close()
	if !errors.Is(err, errDiskFull) {
		t.Errorf("got Close error %v, want %v", err, errDiskFull)
	}
	if got := l.Dropped(); got != 5 {
		t.Errorf("got %d dropped, want 5", got)
	}
}

func TestLogger_CloseIsIdempotentAndLogAfterCloseDrops(t *testing.T) {
	var buf testkit.SyncBuffer
	l := New(&buf)
	l.Log(Entry{SQL: "SELECT 1"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("got second Close error %v, want nil", err)
	}
	l.Log(Entry{SQL: "SELECT 2"})
	if got := l.Dropped(); got != 1 {
		t.Errorf("got %d dropped, want 1 (the entry logged after Close)", got)
	}
	if got := strings.Count(buf.String(), "\n"); got != 1 {
		t.Errorf("got %d lines, want 1", got)
	}
}

func TestLogger_NilIsSafe(t *testing.T) {
	var l *Logger
	l.Log(Entry{SQL: "SELECT 1"})
	if got := l.Dropped(); got != 0 {
		t.Errorf("got %d dropped, want 0", got)
	}
	if err := l.Close(); err != nil {
		t.Errorf("got %v, want nil", err)
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing.log")
	if err := os.WriteFile(existing, []byte("{\"old\":true}\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		dest      string
		wantErr   bool
		wantLines int
		wantMode  os.FileMode
	}{
		{name: "new file", dest: filepath.Join(dir, "new.log"), wantLines: 1, wantMode: 0o600},
		{name: "existing file is appended to", dest: existing, wantLines: 2, wantMode: 0o640},
		{name: "empty destination", dest: "", wantErr: true},
		{name: "missing directory", dest: filepath.Join(dir, "nope", "a.log"), wantErr: true},
		{name: "stdout", dest: "stdout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Open(tt.dest)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if tt.dest == "stdout" {
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stdout.Stat(); err != nil {
					t.Errorf("got stdout unusable after Close: %v", err)
				}
				return
			}
			l.Log(Entry{Kind: KindQuery, SQL: "SELECT 1"})
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(tt.dest)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(decodeLines(t, string(data))); got != tt.wantLines {
				t.Errorf("got %d lines, want %d", got, tt.wantLines)
			}
			fi, err := os.Stat(tt.dest)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != tt.wantMode {
				t.Errorf("got mode %v, want %v", got, tt.wantMode)
			}
		})
	}
}
