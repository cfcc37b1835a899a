package pgwire

import (
	"bytes"
	"math"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

func TestNewCancelKey(t *testing.T) {
	seen := make(map[CancelKey]bool)
	for range 1000 {
		k, err := NewCancelKey()
		if err != nil {
			t.Fatal(err)
		}
		if k.ProcessID == 0 || k.ProcessID > math.MaxInt32 || k.SecretKey == 0 {
			t.Fatalf("got key %+v, want PID in [1, 2^31-1] and a non-zero secret", k)
		}
		seen[k] = true
	}
	if len(seen) < 999 {
		t.Errorf("got %d distinct keys out of 1000, want (nearly) all distinct", len(seen))
	}
}

func TestWriteError(t *testing.T) {
	tests := []struct {
		name string
		in   ClientError
		want pgproto3.ErrorResponse
	}{
		{
			name: "defaults",
			in:   ClientError{Message: "boom"},
			want: pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: "XX000", Message: "boom"},
		},
		{
			name: "all fields",
			in:   ClientError{Severity: "ERROR", Code: "28000", Message: "no access", Detail: "d", Hint: "ask your admin"},
			want: pgproto3.ErrorResponse{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: "28000", Message: "no access", Detail: "d", Hint: "ask your admin"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteError(&buf, tt.in); err != nil {
				t.Fatal(err)
			}
			msg, err := pgproto3.NewFrontend(&buf, nil).Receive()
			if err != nil {
				t.Fatal(err)
			}
			got, ok := msg.(*pgproto3.ErrorResponse)
			if !ok {
				t.Fatalf("got %T, want *pgproto3.ErrorResponse", msg)
			}
			if got.Severity != tt.want.Severity || got.SeverityUnlocalized != tt.want.SeverityUnlocalized || got.Code != tt.want.Code ||
				got.Message != tt.want.Message || got.Detail != tt.want.Detail || got.Hint != tt.want.Hint {
				t.Errorf("got %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestClient_SendError(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	c := &Client{Conn: server}
	done := make(chan error, 1)
	go func() { done <- c.SendError(ClientError{Code: "57P01", Message: "Waypoint is shutting down"}) }()
	msg, err := pgproto3.NewFrontend(client, nil).Receive()
	if err != nil {
		t.Fatal(err)
	}
	if er, ok := msg.(*pgproto3.ErrorResponse); !ok || er.Code != "57P01" || er.Severity != "FATAL" {
		t.Errorf("got %s, want FATAL 57P01", describe(msg))
	}
	if err := <-done; err != nil {
		t.Errorf("SendError: %v", err)
	}
}

func TestClient_SendErrorToStuckClient(t *testing.T) {
	// A client that never reads cannot block SendError for ever: the write
	// deadline ends it.
	defer func(d time.Duration) { writeTimeout = d }(writeTimeout)
	writeTimeout = 50 * time.Millisecond
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	if err := (&Client{Conn: server}).SendError(ClientError{Message: "x"}); err == nil {
		t.Error("got nil error writing to a client that never reads, want a timeout")
	}
}
