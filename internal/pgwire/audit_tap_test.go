package pgwire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// tapped is one statement TapQueries reported.
type tapped struct{ kind, sql string }

// chunkConn is a net.Conn whose Reads return data in chunks of the given
// sizes (the last size repeats), never more than asked for.
type chunkConn struct {
	net.Conn // nil: only Read is used
	data     []byte
	sizes    []int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	size := c.sizes[0]
	if len(c.sizes) > 1 {
		c.sizes = c.sizes[1:]
	}
	n := copy(p[:min(len(p), size, len(c.data))], c.data)
	c.data = c.data[n:]
	return n, nil
}

// tapAll relays data through TapQueries in chunks of sizes and returns the
// bytes read and the statements reported.
func tapAll(t testing.TB, data []byte, sizes []int, maxSQL int) ([]byte, []tapped) {
	t.Helper()
	var got []tapped
	conn := TapQueries(&chunkConn{data: data, sizes: sizes}, maxSQL, func(kind, sql string) {
		got = append(got, tapped{kind, sql})
	})
	out, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	return out, got
}

// encodeAll encodes frontend messages into one client→server stream.
func encodeAll(t testing.TB, msgs ...pgproto3.FrontendMessage) []byte {
	t.Helper()
	var buf []byte
	for _, m := range msgs {
		var err error
		if buf, err = m.Encode(buf); err != nil {
			t.Fatalf("encode %T: %v", m, err)
		}
	}
	return buf
}

// sessionStream is a realistic session: simple and extended queries, a COPY,
// empty statements, non-ASCII text and a Terminate.
func sessionStream(t testing.TB) ([]byte, []tapped) {
	stream := encodeAll(t,
		&pgproto3.Query{String: "SELECT 1"},
		&pgproto3.Parse{Name: "s1", Query: "SELECT $1::int", ParameterOIDs: []uint32{23}},
		&pgproto3.Bind{PreparedStatement: "s1", Parameters: [][]byte{[]byte("42")}},
		&pgproto3.Describe{ObjectType: 'P'},
		&pgproto3.Execute{},
		&pgproto3.Sync{},
		&pgproto3.Query{String: "COPY t FROM STDIN"},
		&pgproto3.CopyData{Data: []byte("Q\x00\x00\x00\x09P\x00\x00")}, // looks like messages; is data
		&pgproto3.CopyDone{},
		&pgproto3.Parse{Query: ""},
		&pgproto3.Query{String: ""},
		&pgproto3.Query{String: "SELECT 'héllo ☃'; SELECT 2"},
		&pgproto3.Terminate{},
	)
	want := []tapped{
		{TapKindQuery, "SELECT 1"},
		{TapKindParse, "SELECT $1::int"},
		{TapKindQuery, "COPY t FROM STDIN"},
		{TapKindParse, ""},
		{TapKindQuery, ""},
		{TapKindQuery, "SELECT 'héllo ☃'; SELECT 2"},
	}
	return stream, want
}

// checkTap checks that out equals in and that got equals want.
func checkTap(t *testing.T, in, out []byte, got, want []tapped) {
	t.Helper()
	if !bytes.Equal(out, in) {
		t.Fatalf("got %d bytes %q, want the %d input bytes unchanged", len(out), out, len(in))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got statements %q, want %q", got, want)
	}
}

// TestTapQueries_SplitAtEveryByte splits a session into two Reads at every
// possible offset, and into Reads of every fixed size, including one byte at
// a time and all at once.
func TestTapQueries_SplitAtEveryByte(t *testing.T) {
	stream, want := sessionStream(t)
	for i := 0; i <= len(stream); i++ {
		t.Run(fmt.Sprintf("split at %d", i), func(t *testing.T) {
			out, got := tapAll(t, stream, []int{max(i, 1), len(stream)}, 0)
			checkTap(t, stream, out, got, want)
		})
	}
	for size := 1; size <= len(stream); size++ {
		t.Run(fmt.Sprintf("chunks of %d", size), func(t *testing.T) {
			out, got := tapAll(t, stream, []int{size}, 0)
			checkTap(t, stream, out, got, want)
		})
	}
}

func TestTapQueries_Cases(t *testing.T) {
	long := strings.Repeat("x", 100)
	tests := []struct {
		name   string
		stream []byte
		maxSQL int
		want   []tapped
	}{
		{
			name:   "query longer than maxSQL is reported cut",
			stream: encodeAll(t, &pgproto3.Query{String: "SELECT '" + long + "'"}, &pgproto3.Query{String: "SELECT 2"}),
			maxSQL: 10,
			want:   []tapped{{TapKindQuery, "SELECT 'xx"}, {TapKindQuery, "SELECT 2"}},
		},
		{
			name:   "parse longer than maxSQL is reported cut",
			stream: encodeAll(t, &pgproto3.Parse{Name: long, Query: long, ParameterOIDs: []uint32{25, 23}}),
			maxSQL: 5,
			want:   []tapped{{TapKindParse, "xxxxx"}},
		},
		{
			name:   "SQL of exactly maxSQL",
			stream: encodeAll(t, &pgproto3.Query{String: "SELECT 1"}),
			maxSQL: 8,
			want:   []tapped{{TapKindQuery, "SELECT 1"}},
		},
		{
			name: "length below 4 stops tapping, bytes still relayed",
			stream: append(append(encodeAll(t, &pgproto3.Query{String: "SELECT 1"}),
				'X', 0, 0, 0, 3),
				encodeAll(t, &pgproto3.Query{String: "SELECT 2"})...),
			want: []tapped{{TapKindQuery, "SELECT 1"}},
		},
		{
			name:   "query without NUL is reported at the end of its message",
			stream: []byte{'Q', 0, 0, 0, 12, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '3'},
			want:   []tapped{{TapKindQuery, "SELECT 3"}},
		},
		{
			name:   "parse whose name never ends reports nothing",
			stream: []byte{'P', 0, 0, 0, 7, 'a', 'b', 'c'},
		},
		{
			name:   "query with empty body",
			stream: []byte{'Q', 0, 0, 0, 4},
			want:   []tapped{{TapKindQuery, ""}},
		},
		{
			name: "huge declared length keeps at most maxSQL",
			stream: append([]byte{'Q', 0x7f, 0xff, 0xff, 0xff},
				bytes.Repeat([]byte("y"), 1<<16)...),
			maxSQL: 16,
			// The message never ends within the stream: nothing reported.
		},
		{
			name:   "truncated header at end of stream",
			stream: []byte{'Q', 0, 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, size := range []int{1, 3, 7, len(tt.stream)} {
				out, got := tapAll(t, tt.stream, []int{size}, tt.maxSQL)
				checkTap(t, tt.stream, out, got, tt.want)
			}
		})
	}
}

// TestTapQueries_BoundedMemory feeds a message declaring 2 GiB and checks
// that the scanner's SQL buffer stays within maxSQL.
func TestTapQueries_BoundedMemory(t *testing.T) {
	s := queryScanner{maxSQL: 16, fn: func(string, string) {}}
	s.feed([]byte{'Q', 0x7f, 0xff, 0xff, 0xff})
	chunk := bytes.Repeat([]byte("z"), 4096)
	for range 256 {
		s.feed(chunk)
	}
	if got := cap(s.sql); got > 2*s.maxSQL {
		t.Errorf("got SQL buffer capacity %d, want at most %d", got, 2*s.maxSQL)
	}
	if s.state != stSQL {
		t.Errorf("got state %d, want still collecting (stSQL)", s.state)
	}
}

// TestTapQueries_NilFnReturnsConn checks the zero-cost path.
func TestTapQueries_NilFnReturnsConn(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := TapQueries(a, 0, nil); got != a {
		t.Errorf("got %T, want the conn itself", got)
	}
}

// TestTapQueries_PassThrough checks, on a real TCP connection, that Write,
// deadlines, CloseWrite (half-close) and Close reach the wrapped conn.
func TestTapQueries_PassThrough(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	_ = peer.SetDeadline(time.Now().Add(liveness))
	var got []tapped
	conn := TapQueries(raw, 0, func(kind, sql string) { got = append(got, tapped{kind, sql}) })
	defer conn.Close()

	if conn.LocalAddr().String() != raw.LocalAddr().String() {
		t.Errorf("got LocalAddr %v, want %v", conn.LocalAddr(), raw.LocalAddr())
	}
	if _, err := conn.Write([]byte("to peer")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := io.ReadFull(peer, buf); err != nil || string(buf) != "to peer" {
		t.Fatalf("peer got %q, %v, want \"to peer\"", buf, err)
	}

	if err := conn.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("got Read error %v, want a deadline error", err)
	}
	if err := conn.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}

	cw, ok := conn.(interface{ CloseWrite() error })
	if !ok {
		t.Fatal("got a conn without CloseWrite, want it kept for half-close")
	}
	if err := cw.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	if n, err := peer.Read(buf); err != io.EOF {
		t.Errorf("peer got %d, %v after CloseWrite, want EOF", n, err)
	}
	// Half-closed: the tapped side still reads.
	query := encodeAll(t, &pgproto3.Query{String: "SELECT 1"})
	if _, err := peer.Write(query); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(liveness))
	in := make([]byte, len(query))
	if _, err := io.ReadFull(conn, in); err != nil || !bytes.Equal(in, query) {
		t.Fatalf("got %q, %v, want the query bytes", in, err)
	}
	if want := []tapped{{TapKindQuery, "SELECT 1"}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %q, want %q", got, want)
	}

	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("got Write after Close error %v, want net.ErrClosed", err)
	}
}

// TestTapQueries_CloseWriteUnsupported checks that a conn without
// CloseWrite reports an error instead of pretending to half-close.
func TestTapQueries_CloseWriteUnsupported(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	conn := TapQueries(a, 0, func(string, string) {})
	if err := conn.(interface{ CloseWrite() error }).CloseWrite(); err == nil {
		t.Error("got nil error, want one: net.Pipe cannot half-close")
	}
}

// TestTapQueries_Pgconn taps a session started by a real client (pgconn)
// after Accept and FinishStartup, and checks that its simple and extended
// queries are reported while the session works normally.
func TestTapQueries_Pgconn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	reported := make(chan tapped, 16)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(liveness))
		ctx, cancel := context.WithTimeout(context.Background(), liveness)
		defer cancel()
		c, err := Accept(ctx, conn, FrontOptions{TLSMode: TLSOff})
		if err != nil || c.FinishStartup(fakeUpstream, testKey) != nil {
			return
		}
		tap := TapQueries(c.Conn, 0, func(kind, sql string) { reported <- tapped{kind, sql} })
		answerSimpleAndExtended(pgproto3.NewBackend(tap, tap))
	}()

	pc, err := connectPgconn(t, ln.Addr().String(), "sslmode=disable", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), liveness)
	defer cancel()
	if _, err := pc.Exec(ctx, "SELECT 'simple'").ReadAll(); err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if res := pc.ExecParams(ctx, "SELECT $1::text", [][]byte{[]byte("x")}, nil, nil, nil).Read(); res.Err != nil {
		t.Fatalf("ExecParams: %v", res.Err)
	}
	want := []tapped{{TapKindQuery, "SELECT 'simple'"}, {TapKindParse, "SELECT $1::text"}}
	for _, w := range want {
		select {
		case got := <-reported:
			if got != w {
				t.Errorf("got %q, want %q", got, w)
			}
		case <-time.After(liveness):
			t.Fatalf("no statement reported, want %q", w)
		}
	}
}

// answerSimpleAndExtended answers simple queries with an empty result, and
// extended-protocol batches with ParseComplete, BindComplete, NoData and an
// empty command, until EOF.
func answerSimpleAndExtended(be *pgproto3.Backend) {
	for {
		msg, err := be.Receive()
		if err != nil {
			return
		}
		switch msg.(type) {
		case *pgproto3.Query:
			be.Send(&pgproto3.EmptyQueryResponse{})
			be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		case *pgproto3.Parse:
			be.Send(&pgproto3.ParseComplete{})
		case *pgproto3.Bind:
			be.Send(&pgproto3.BindComplete{})
		case *pgproto3.Describe:
			be.Send(&pgproto3.NoData{})
		case *pgproto3.Execute:
			be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 0")})
		case *pgproto3.Sync:
			be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		default:
			continue
		}
		if be.Flush() != nil {
			return
		}
	}
}

// FuzzTapQueries relays arbitrary bytes through TapQueries in chunks of an
// arbitrary size. The bytes read must always equal the input, no reported
// SQL may exceed maxSQL, and the statements reported must not depend on how
// the stream was chunked.
func FuzzTapQueries(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8, maxSQL uint8) {
		limit := int(maxSQL)
		out, got := tapAll(t, data, []int{int(chunk) + 1}, limit)
		if !bytes.Equal(out, data) {
			t.Fatalf("got %q, want the input %q unchanged", out, data)
		}
		if limit <= 0 {
			limit = DefaultTapMaxSQL
		}
		for _, s := range got {
			if len(s.sql) > limit {
				t.Fatalf("got SQL of %d bytes, want at most %d", len(s.sql), limit)
			}
		}
		_, whole := tapAll(t, data, []int{len(data) + 1}, int(maxSQL))
		if fmt.Sprint(got) != fmt.Sprint(whole) {
			t.Fatalf("chunks of %d reported %q, whole stream %q", int(chunk)+1, got, whole)
		}
	})
}
