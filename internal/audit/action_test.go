package audit

import (
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/testkit"
)

func TestLogger_LogAction(t *testing.T) {
	var buf testkit.SyncBuffer
	l := New(&buf)
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	l.LogAction(Action{
		Time: at, Action: "terminate", By: "ops@example.com", ByMachine: "ops-laptop", ByNode: "nOPS", Via: "tailnet",
		Session: Session{Conn: "1-abc", Listener: "pg-main", Login: "alice@example.com", Machine: "laptop", NodeID: "nA",
			Database: "appdb", Role: "wp_alice_laptop_appdb"}, Outcome: "terminated",
	})
	l.LogAction(Action{Action: "revalidate", By: "local", Via: "local"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := decodeLines(t, buf.String())
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2:\n%s", len(lines), buf.String())
	}
	want := map[string]any{
		"time": "2025-03-01T12:00:00Z", "kind": "console", "action": "terminate",
		"by": "ops@example.com", "by_machine": "ops-laptop", "by_node": "nOPS", "via": "tailnet",
		"conn": "1-abc", "listener": "pg-main", "login": "alice@example.com", "machine": "laptop",
		"node_id": "nA", "database": "appdb", "role": "wp_alice_laptop_appdb", "outcome": "terminated",
	}
	for k, v := range want {
		if lines[0][k] != v {
			t.Errorf("line 1 %q = %v, want %v", k, lines[0][k], v)
		}
	}
	if len(lines[0]) != len(want) {
		t.Errorf("line 1 has fields %v, want exactly %d (no sql)", lines[0], len(want))
	}
	for _, k := range []string{"by_machine", "conn", "outcome", "sql"} {
		if _, ok := lines[1][k]; ok {
			t.Errorf("line 2 has empty field %q: %v", k, lines[1])
		}
	}
	if lines[1]["time"] == "" || lines[1]["kind"] != "console" || lines[1]["by"] != "local" {
		t.Errorf("line 2 = %v, want a time, kind console and by local", lines[1])
	}
}

func TestLogger_LogActionNilAndClosed(t *testing.T) {
	var l *Logger
	l.LogAction(Action{Action: "terminate"}) // must not panic
	var buf testkit.SyncBuffer
	l = New(&buf)
	l.Close()
	l.LogAction(Action{Action: "terminate"})
	if l.Dropped() != 1 {
		t.Errorf("Dropped = %d after LogAction on a closed Logger, want 1", l.Dropped())
	}
}
