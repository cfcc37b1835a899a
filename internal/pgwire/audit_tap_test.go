package pgwire

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
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

// query and parse are the events for a whole (uncut) Query or Parse text.
func query(sql string) TapEvent {
	return TapEvent{Kind: TapKindQuery, SQL: sql, SQLBytes: int64(len(sql))}
}

func parse(sql string) TapEvent {
	return TapEvent{Kind: TapKindParse, SQL: sql, SQLBytes: int64(len(sql))}
}

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
// bytes read and the events reported.
func tapAll(t testing.TB, data []byte, sizes []int, maxSQL int) ([]byte, []TapEvent) {
	t.Helper()
	var got []TapEvent
	conn := TapQueries(&chunkConn{data: data, sizes: sizes}, maxSQL, func(ev TapEvent) {
		got = append(got, ev)
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
// empty statements, non-ASCII text, fast-path function calls (as libpq's
// large-object functions send them) and a Terminate.
func sessionStream(t testing.TB) ([]byte, []TapEvent) {
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
		&pgproto3.FunctionCall{Function: 952, ArgFormatCodes: []uint16{1, 1}, Arguments: [][]byte{{0, 0, 0x40, 0}, {0, 2, 0, 0}}, ResultFormatCode: 1},
		&pgproto3.FunctionCall{Function: 955, ArgFormatCodes: []uint16{0}, Arguments: [][]byte{[]byte("secret"), nil, {}}},
		&pgproto3.FunctionCall{Function: 715},
		&pgproto3.Terminate{},
	)
	want := []TapEvent{
		query("SELECT 1"),
		parse("SELECT $1::int"),
		query("COPY t FROM STDIN"),
		parse(""),
		query(""),
		query("SELECT 'héllo ☃'; SELECT 2"),
		{Kind: TapKindFunctionCall, FunctionOID: 952, ArgCount: 2, ArgSizes: []int32{4, 4}},
		{Kind: TapKindFunctionCall, FunctionOID: 955, ArgCount: 3, ArgSizes: []int32{6, -1, 0}},
		{Kind: TapKindFunctionCall, FunctionOID: 715},
	}
	return stream, want
}

// checkTap checks that out equals in and that got equals want.
func checkTap(t *testing.T, in, out []byte, got, want []TapEvent) {
	t.Helper()
	if !bytes.Equal(out, in) {
		t.Fatalf("got %d bytes %q, want the %d input bytes unchanged", len(out), out, len(in))
	}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Fatalf("got events\n%+v\nwant\n%+v", got, want)
	}
	for _, ev := range got {
		if bytes.Contains([]byte(fmt.Sprintf("%+v", ev)), []byte("secret")) {
			t.Fatalf("got event %+v, want no argument values", ev)
		}
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

// cut is the event for sql reported cut to its first n bytes.
func cut(kind, sql string, n int) TapEvent {
	sum := sha256.Sum256([]byte(sql))
	return TapEvent{Kind: kind, SQL: sql[:n], SQLBytes: int64(len(sql)), Truncated: true, SQLSHA256: hex.EncodeToString(sum[:])}
}

// fnCallBytes is a FunctionCall message for oid with the given argument
// lengths (-1: NULL), each value filled with 'v', and no format codes.
func fnCallBytes(oid uint32, lens ...int32) []byte {
	body := binary.BigEndian.AppendUint32(nil, oid)
	body = binary.BigEndian.AppendUint16(body, 0)
	body = binary.BigEndian.AppendUint16(body, uint16(len(lens)))
	for _, n := range lens {
		body = binary.BigEndian.AppendUint32(body, uint32(n))
		if n > 0 {
			body = append(body, bytes.Repeat([]byte("v"), int(n))...)
		}
	}
	body = binary.BigEndian.AppendUint16(body, 0)
	return append(binary.BigEndian.AppendUint32([]byte{'F'}, uint32(len(body)+4)), body...)
}

func TestTapQueries_Cases(t *testing.T) {
	long := strings.Repeat("x", 100)
	manyArgs := make([]int32, TapMaxArgSizes+10)
	for i := range manyArgs {
		manyArgs[i] = int32(i % 3)
	}
	tests := []struct {
		name   string
		stream []byte
		maxSQL int
		want   []TapEvent
	}{
		{
			name:   "query longer than maxSQL is reported cut, with its length and hash",
			stream: encodeAll(t, &pgproto3.Query{String: "SELECT '" + long + "'"}, &pgproto3.Query{String: "SELECT 2"}),
			maxSQL: 10,
			want:   []TapEvent{cut(TapKindQuery, "SELECT '"+long+"'", 10), query("SELECT 2")},
		},
		{
			name:   "parse longer than maxSQL is reported cut, with its length and hash",
			stream: encodeAll(t, &pgproto3.Parse{Name: long, Query: long, ParameterOIDs: []uint32{25, 23}}),
			maxSQL: 5,
			want:   []TapEvent{cut(TapKindParse, long, 5)},
		},
		{
			name:   "SQL of exactly maxSQL is not cut",
			stream: encodeAll(t, &pgproto3.Query{String: "SELECT 1"}),
			maxSQL: 8,
			want:   []TapEvent{query("SELECT 1")},
		},
		{
			name:   "SQL one byte over maxSQL is cut",
			stream: encodeAll(t, &pgproto3.Query{String: "SELECT 10"}),
			maxSQL: 8,
			want:   []TapEvent{cut(TapKindQuery, "SELECT 10", 8)},
		},
		{
			name:   "a cut statement does not leak into the next one",
			stream: encodeAll(t, &pgproto3.Query{String: long}, &pgproto3.Parse{Query: "SELECT 1"}, &pgproto3.Query{String: long + "y"}),
			maxSQL: 8,
			want:   []TapEvent{cut(TapKindQuery, long, 8), parse("SELECT 1"), cut(TapKindQuery, long+"y", 8)},
		},
		{
			name: "length below 4 stops tapping, bytes still relayed",
			stream: append(append(encodeAll(t, &pgproto3.Query{String: "SELECT 1"}),
				'X', 0, 0, 0, 3),
				encodeAll(t, &pgproto3.Query{String: "SELECT 2"})...),
			want: []TapEvent{query("SELECT 1")},
		},
		{
			name:   "query without NUL is reported at the end of its message",
			stream: []byte{'Q', 0, 0, 0, 12, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '3'},
			want:   []TapEvent{query("SELECT 3")},
		},
		{
			name:   "parse whose name never ends reports nothing",
			stream: []byte{'P', 0, 0, 0, 7, 'a', 'b', 'c'},
		},
		{
			name:   "query with empty body",
			stream: []byte{'Q', 0, 0, 0, 4},
			want:   []TapEvent{query("")},
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
		{
			name:   "function call: OID, argument count and sizes, no values",
			stream: append(fnCallBytes(2965, 8, -1, 0, 3), encodeAll(t, &pgproto3.Query{String: "SELECT 1"})...),
			want:   []TapEvent{{Kind: TapKindFunctionCall, FunctionOID: 2965, ArgCount: 4, ArgSizes: []int32{8, -1, 0, 3}}, query("SELECT 1")},
		},
		{
			name:   "function call with format codes",
			stream: encodeAll(t, &pgproto3.FunctionCall{Function: 7, ArgFormatCodes: []uint16{0, 1, 1}, Arguments: [][]byte{[]byte("ab"), []byte("c"), nil}, ResultFormatCode: 1}),
			want:   []TapEvent{{Kind: TapKindFunctionCall, FunctionOID: 7, ArgCount: 3, ArgSizes: []int32{2, 1, -1}}},
		},
		{
			name:   "function call lists at most TapMaxArgSizes sizes but counts all",
			stream: fnCallBytes(1, manyArgs...),
			want:   []TapEvent{{Kind: TapKindFunctionCall, FunctionOID: 1, ArgCount: len(manyArgs), ArgSizes: manyArgs[:TapMaxArgSizes]}},
		},
		{
			name:   "function call with empty body is still reported",
			stream: []byte{'F', 0, 0, 0, 4},
			want:   []TapEvent{{Kind: TapKindFunctionCall}},
		},
		{
			name: "function call cut short reports what it declared",
			// OID 9, no formats, 2 arguments, the first 4 bytes long but
			// the message ends inside it.
			stream: []byte{'F', 0, 0, 0, 18, 0, 0, 0, 9, 0, 0, 0, 2, 0, 0, 0, 4, 'a', 'b'},
			want:   []TapEvent{{Kind: TapKindFunctionCall, FunctionOID: 9, ArgCount: 2, ArgSizes: []int32{4}}},
		},
		{
			name: "function call argument longer than its message",
			stream: append([]byte{'F', 0, 0, 0, 18, 0, 0, 0, 9, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff, 'a', 'b'},
				encodeAll(t, &pgproto3.Query{String: "SELECT 1"})...),
			want: []TapEvent{{Kind: TapKindFunctionCall, FunctionOID: 9, ArgCount: 1, ArgSizes: []int32{0x7fffffff}}, query("SELECT 1")},
		},
		{
			name:   "function call with negative counts",
			stream: []byte{'F', 0, 0, 0, 14, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xfe, 0, 0},
			want:   []TapEvent{{Kind: TapKindFunctionCall, FunctionOID: 3}},
		},
		{
			name: "function call data inside COPY is not a call",
			stream: encodeAll(t, &pgproto3.Query{String: "COPY t FROM STDIN"},
				&pgproto3.CopyData{Data: fnCallBytes(1, 4)}, &pgproto3.CopyDone{}),
			want: []TapEvent{query("COPY t FROM STDIN")},
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

// TestTapQueries_HashesWholeLongSQL checks, for a statement far longer than
// maxSQL and in reads of many sizes, that the reported length and SHA-256
// are those of the whole text, which a log reader can match against a known
// statement.
func TestTapQueries_HashesWholeLongSQL(t *testing.T) {
	sql := "INSERT INTO t VALUES ('" + strings.Repeat("é☃x", 50_000) + "')"
	stream := encodeAll(t, &pgproto3.Query{String: sql})
	sum := sha256.Sum256([]byte(sql))
	for _, size := range []int{1, 100, 4096, len(stream)} {
		_, got := tapAll(t, stream, []int{size}, DefaultTapMaxSQL)
		if len(got) != 1 {
			t.Fatalf("reads of %d: got %d events, want 1", size, len(got))
		}
		ev := got[0]
		if !ev.Truncated || ev.SQLBytes != int64(len(sql)) || ev.SQLSHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("reads of %d: got truncated %v, %d bytes, sha256 %s; want true, %d, %x",
				size, ev.Truncated, ev.SQLBytes, ev.SQLSHA256, len(sql), sum)
		}
		if ev.SQL != sql[:DefaultTapMaxSQL] {
			t.Errorf("reads of %d: got SQL of %d bytes, want the first %d bytes of the text", size, len(ev.SQL), DefaultTapMaxSQL)
		}
	}
}

// TestTapQueries_BoundedMemory feeds a message declaring 2 GiB and checks
// that the scanner's SQL buffer stays within maxSQL.
func TestTapQueries_BoundedMemory(t *testing.T) {
	s := queryScanner{maxSQL: 16, fn: func(TapEvent) {}}
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
	var got []TapEvent
	conn := TapQueries(raw, 0, func(ev TapEvent) { got = append(got, ev) })
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
	msg := encodeAll(t, &pgproto3.Query{String: "SELECT 1"})
	if _, err := peer.Write(msg); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(liveness))
	in := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, in); err != nil || !bytes.Equal(in, msg) {
		t.Fatalf("got %q, %v, want the query bytes", in, err)
	}
	if want := []TapEvent{query("SELECT 1")}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %+v, want %+v", got, want)
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
	conn := TapQueries(a, 0, func(TapEvent) {})
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
	reported := make(chan TapEvent, 16)
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
		tap := TapQueries(c.Conn, 0, func(ev TapEvent) { reported <- ev })
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
	want := []TapEvent{query("SELECT 'simple'"), parse("SELECT $1::text")}
	for _, w := range want {
		select {
		case got := <-reported:
			if fmt.Sprint(got) != fmt.Sprint(w) {
				t.Errorf("got %+v, want %+v", got, w)
			}
		case <-time.After(liveness):
			t.Fatalf("no statement reported, want %+v", w)
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
// SQL may exceed maxSQL, a cut must be marked with the whole length and a
// hash, a FunctionCall must list at most TapMaxArgSizes sizes, and the
// events reported must not depend on how the stream was chunked.
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
		for _, ev := range got {
			checkEvent(t, ev, limit)
		}
		_, whole := tapAll(t, data, []int{len(data) + 1}, int(maxSQL))
		if fmt.Sprint(got) != fmt.Sprint(whole) {
			t.Fatalf("chunks of %d reported %+v, whole stream %+v", int(chunk)+1, got, whole)
		}
	})
}

// checkEvent checks the invariants of one reported event for a tap with
// maxSQL limit.
func checkEvent(t *testing.T, ev TapEvent, limit int) {
	t.Helper()
	switch {
	case len(ev.SQL) > limit:
		t.Fatalf("got SQL of %d bytes, want at most %d", len(ev.SQL), limit)
	case ev.Truncated != (ev.SQLBytes > int64(len(ev.SQL))):
		t.Fatalf("got truncated %v for %d of %d bytes", ev.Truncated, len(ev.SQL), ev.SQLBytes)
	case ev.Truncated && (len(ev.SQL) != limit || len(ev.SQLSHA256) != 64):
		t.Fatalf("got a cut at %d bytes with hash %q, want the first %d bytes and a SHA-256", len(ev.SQL), ev.SQLSHA256, limit)
	case !ev.Truncated && (ev.SQLBytes != int64(len(ev.SQL)) || ev.SQLSHA256 != ""):
		t.Fatalf("got uncut SQL of %d bytes with SQLBytes %d and hash %q", len(ev.SQL), ev.SQLBytes, ev.SQLSHA256)
	case len(ev.ArgSizes) > TapMaxArgSizes || len(ev.ArgSizes) > ev.ArgCount:
		t.Fatalf("got %d argument sizes for %d arguments, want at most %d", len(ev.ArgSizes), ev.ArgCount, TapMaxArgSizes)
	case ev.Kind != TapKindFunctionCall && (ev.FunctionOID != 0 || ev.ArgCount != 0):
		t.Fatalf("got a %s event with function fields %+v", ev.Kind, ev)
	}
}
