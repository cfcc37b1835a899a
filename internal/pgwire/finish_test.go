package pgwire

import (
	"bytes"
	"math"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

func TestClientKey(t *testing.T) {
	tests := []struct {
		name string
		pid  uint32
	}{
		{"typical pid", 4242},
		{"largest pid", math.MaxInt32},
		{"pid shared by two servers", 4242},
	}
	seen := make(map[CancelKey]bool)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := &Upstream{Key: CancelKey{ProcessID: tt.pid, SecretKey: 0xdeadbeef}}
			for range 500 {
				k, err := ClientKey(up)
				if err != nil {
					t.Fatal(err)
				}
				if k.ProcessID != tt.pid {
					t.Fatalf("got process ID %d, want the backend's %d", k.ProcessID, tt.pid)
				}
				if k.SecretKey == 0 || k.SecretKey == up.Key.SecretKey {
					t.Fatalf("got secret %#x, want a non-zero secret of Waypoint's own (backend's is %#x)", k.SecretKey, up.Key.SecretKey)
				}
				seen[k] = true
			}
		})
	}
	// 1500 random 32-bit secrets over two distinct pids: a repeat is a
	// broken generator, not bad luck (odds about 2^-13 per run for one).
	if len(seen) < 1499 {
		t.Errorf("got %d distinct keys out of 1500, want (nearly) all distinct", len(seen))
	}
}

func TestFinishStartup_BackendKeyData(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	up := &Upstream{
		ParameterStatus: map[string]string{"server_version": "18.0"},
		Key:             CancelKey{ProcessID: 31337, SecretKey: 0x0badf00d},
	}
	key := CancelKey{ProcessID: 31337, SecretKey: 0x12345678}
	done := make(chan error, 1)
	go func() { done <- (&Client{Conn: server}).FinishStartup(up, key) }()
	fe := pgproto3.NewFrontend(client, nil)
	var got *pgproto3.BackendKeyData
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		if bkd, ok := msg.(*pgproto3.BackendKeyData); ok {
			got = &pgproto3.BackendKeyData{ProcessID: bkd.ProcessID, SecretKey: bytes.Clone(bkd.SecretKey)}
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			break
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("FinishStartup: %v", err)
	}
	want := []byte{0x12, 0x34, 0x56, 0x78}
	if got == nil || got.ProcessID != 31337 || !bytes.Equal(got.SecretKey, want) {
		t.Fatalf("got BackendKeyData %+v, want process ID 31337 and secret % x (the key given, not the backend's)", got, want)
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
