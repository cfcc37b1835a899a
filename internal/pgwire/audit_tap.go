package pgwire

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"net"
	"sync"
)

// Kinds of message TapQueries reports: the protocol message that carried
// the statement.
const (
	TapKindQuery        = "query"         // simple Query ('Q')
	TapKindParse        = "parse"         // extended-protocol Parse ('P')
	TapKindFunctionCall = "function_call" // fast-path FunctionCall ('F'), no SQL
)

// DefaultTapMaxSQL is the cap TapQueries uses when maxSQL is zero or less.
const DefaultTapMaxSQL = 64 << 10

// TapMaxArgSizes is the most argument sizes a FunctionCall TapEvent lists;
// ArgCount still counts every argument.
const TapMaxArgSizes = 64

// TapEvent is one client message TapQueries reports.
type TapEvent struct {
	// Kind is TapKindQuery, TapKindParse or TapKindFunctionCall.
	Kind string
	// SQL is a Query's or Parse's statement text, cut to at most maxSQL
	// bytes (possibly inside a multi-byte character). "" for a FunctionCall.
	SQL string
	// SQLBytes is the length of the whole statement text the client sent,
	// whether or not SQL is cut.
	SQLBytes int64
	// Truncated reports that SQL is cut: SQLBytes > len(SQL).
	Truncated bool
	// SQLSHA256 is the hex SHA-256 of the whole statement text, set only
	// when Truncated, so that a cut statement can still be matched against a
	// known text. It hashes the bytes as sent, in the session's
	// client_encoding.
	SQLSHA256 string

	// FunctionOID is the OID of the function a FunctionCall invokes.
	FunctionOID uint32
	// ArgCount is the number of arguments a FunctionCall declares.
	ArgCount int
	// ArgSizes are the byte lengths of a FunctionCall's arguments, -1 for
	// NULL, at most TapMaxArgSizes of them. Argument values are never
	// reported, as Bind parameters are not: they may be data the audit log
	// must not hold.
	ArgSizes []int32
}

// errNoCloseWrite is returned by CloseWrite when the wrapped connection
// cannot half-close.
var errNoCloseWrite = errors.New("pgwire: connection does not support CloseWrite")

// TapQueries wraps the client→server byte stream of an established session
// (after startup, i.e. regular typed messages: 1-byte type + 4-byte length)
// and calls fn for every simple Query ('Q'), extended Parse ('P') and
// fast-path FunctionCall ('F') message, passing all bytes through
// unchanged. It handles messages split across Read calls and many messages
// in one Read, and never allocates based on an untrusted length: SQL longer
// than maxSQL bytes is reported cut to its first maxSQL bytes, marked
// Truncated, with its full length and SHA-256, while the bytes still pass
// through. A FunctionCall is reported with its function OID and argument
// count and sizes, never argument values. A malformed stream (a length
// below 4) stops tapping but keeps relaying. maxSQL <= 0 means
// DefaultTapMaxSQL.
//
// fn runs on the goroutine that calls Read, once per message, after the
// Read that completed the SQL (for a FunctionCall: the whole message)
// returns from the underlying connection and before the bytes are handed to
// the caller; it must be fast and must not block (audit.Logger.Log
// qualifies). SQL text is reported in whatever client_encoding the session
// uses, not necessarily UTF-8. A nil fn returns c itself.
//
// The returned net.Conn's Read taps; Write, Close, addresses and deadlines
// are c's. It has CloseWrite, which half-closes c when c supports it and
// otherwise returns an error, so a relay's half-close works as before.
// Closing the returned conn closes c. Reads are serialized; the tap keeps
// the parse state of one stream and must not be bypassed by reading c
// directly.
//
// Messages are parsed by hand, as a stream, rather than with pgproto3:
// pgproto3 buffers a whole message before decoding it, which means an
// allocation as large as the client's declared length, and it would consume
// bytes that must reach the backend untouched.
func TapQueries(c net.Conn, maxSQL int, fn func(TapEvent)) net.Conn {
	if fn == nil {
		return c
	}
	if maxSQL <= 0 {
		maxSQL = DefaultTapMaxSQL
	}
	return &tapConn{Conn: c, scan: queryScanner{maxSQL: maxSQL, fn: fn}}
}

// tapConn is the net.Conn TapQueries returns.
type tapConn struct {
	net.Conn
	mu   sync.Mutex // serializes Read so the scanner sees bytes in order
	scan queryScanner
}

// Read reads from the wrapped connection and feeds what it read to the
// scanner before returning it, unchanged.
func (c *tapConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.scan.feed(p[:n])
	}
	return n, err
}

// CloseWrite half-closes the wrapped connection if it supports it.
func (c *tapConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errNoCloseWrite
}

// scanState says which part of a message the scanner is in.
type scanState int

const (
	stHeader  scanState = iota // reading the 5-byte type + length header
	stSkip                     // skipping the rest of a message body
	stName                     // Parse: skipping the statement name up to its NUL
	stSQL                      // Query or Parse: collecting SQL up to its NUL
	stFunc                     // FunctionCall: reading its fields (fnCall)
	stStopped                  // malformed stream: no more tapping
)

// headerLen is the size of a typed message's header: type byte + int32 length.
const headerLen = 5

// queryScanner is a streaming parser of client messages. It keeps no more
// than one header, maxSQL bytes of SQL and one FunctionCall's fixed-size
// fields, whatever lengths the client declares.
type queryScanner struct {
	maxSQL int
	fn     func(TapEvent)

	state scanState
	hdr   [headerLen]byte
	nhdr  int
	left  int64     // body bytes of the current message not yet consumed
	kind  string    // TapKindQuery or TapKindParse while in stName/stSQL
	sql   []byte    // SQL collected so far, at most maxSQL bytes
	total int64     // SQL bytes seen so far, kept or not
	hash  hash.Hash // SHA-256 of the SQL seen so far, once it exceeds maxSQL
	call  fnCall    // the FunctionCall being read, in stFunc
}

// feed consumes b, which continues the stream where the previous feed ended.
func (s *queryScanner) feed(b []byte) {
	for len(b) > 0 && s.state != stStopped {
		if s.state == stHeader {
			b = s.readHeader(b)
			continue
		}
		b = s.readBody(b)
		if s.left == 0 {
			s.endMessage()
		}
	}
}

// readHeader consumes header bytes from b and, once the header is complete,
// starts the message body.
func (s *queryScanner) readHeader(b []byte) []byte {
	n := copy(s.hdr[s.nhdr:], b)
	s.nhdr += n
	if s.nhdr < headerLen {
		return b[n:]
	}
	s.nhdr = 0
	length := binary.BigEndian.Uint32(s.hdr[1:])
	if length < 4 {
		s.state = stStopped
		return nil
	}
	s.left = int64(length) - 4
	s.startBody(s.hdr[0])
	if s.left == 0 {
		s.endMessage()
	}
	return b[n:]
}

// startBody picks the body state for a message of type typ.
func (s *queryScanner) startBody(typ byte) {
	s.sql, s.total, s.hash = s.sql[:0], 0, nil
	switch typ {
	case 'Q':
		s.state, s.kind = stSQL, TapKindQuery
	case 'P':
		s.state, s.kind = stName, TapKindParse
	case 'F':
		s.state, s.kind = stFunc, TapKindFunctionCall
		s.call = fnCall{sizes: s.call.sizes[:0]}
	default:
		s.state, s.kind = stSkip, ""
	}
}

// readBody consumes body bytes from b (never more than the message has
// left) and returns the rest.
func (s *queryScanner) readBody(b []byte) []byte {
	body := b
	if int64(len(body)) > s.left {
		body = body[:s.left]
	}
	s.left -= int64(len(body))
	rest := b[len(body):]
	for len(body) > 0 {
		switch s.state {
		case stName:
			i := bytes.IndexByte(body, 0)
			if i < 0 {
				return rest
			}
			body, s.state = body[i+1:], stSQL
		case stSQL:
			i := bytes.IndexByte(body, 0)
			if i < 0 {
				s.collect(body)
				return rest
			}
			s.collect(body[:i])
			s.report()
			return rest
		case stFunc:
			s.call.feed(body)
			return rest
		default:
			return rest
		}
	}
	return rest
}

// collect appends SQL bytes, keeping at most maxSQL; past that it counts
// and hashes them.
func (s *queryScanner) collect(b []byte) {
	s.total += int64(len(b))
	room := s.maxSQL - len(s.sql)
	if s.hash == nil && len(b) <= room {
		s.sql = append(s.sql, b...)
		return
	}
	if s.hash == nil {
		s.hash = sha256.New()
		s.hash.Write(s.sql)
	}
	s.sql = append(s.sql, b[:max(room, 0)]...)
	s.hash.Write(b)
}

// keepSQLBuffer is the largest SQL buffer kept between messages; a bigger
// one, grown for one long statement, is released so an idle session holds
// little memory.
const keepSQLBuffer = 4 << 10

// report passes the collected SQL to fn, once per message.
func (s *queryScanner) report() {
	ev := TapEvent{Kind: s.kind, SQL: string(s.sql), SQLBytes: s.total}
	if s.hash != nil {
		ev.Truncated, ev.SQLSHA256 = true, hex.EncodeToString(s.hash.Sum(nil))
	}
	s.fn(ev)
	s.state, s.hash = stSkip, nil
	if cap(s.sql) > keepSQLBuffer {
		s.sql = nil
	}
}

// reportCall passes the FunctionCall read so far to fn.
func (s *queryScanner) reportCall() {
	c := &s.call
	s.fn(TapEvent{Kind: TapKindFunctionCall, FunctionOID: c.oid, ArgCount: c.nargs,
		ArgSizes: append([]int32(nil), c.sizes...)})
}

// endMessage finishes a message. SQL whose terminating NUL never came, or a
// FunctionCall cut short (malformed messages the server will reject), is
// still reported: the audit log shows what the client sent.
func (s *queryScanner) endMessage() {
	switch s.state {
	case stSQL:
		s.report()
	case stFunc:
		s.reportCall()
	}
	s.state = stHeader
}

// fnStep is the field of a FunctionCall message fnCall reads next. The
// message is: Int32 function OID; Int16 C, then C Int16 argument format
// codes; Int16 N, then N arguments, each an Int32 length (-1: NULL) and that
// many bytes; Int16 result format code.
type fnStep int

const (
	fnOID      fnStep = iota // Int32 function OID
	fnNFormats               // Int16 number of argument format codes
	fnFormats                // the format codes (skipped)
	fnNArgs                  // Int16 number of arguments
	fnArgLen                 // Int32 length of the next argument
	fnArgValue               // the argument's value (skipped, never kept)
	fnDone                   // the result format code and anything after
)

// fnCall reads one FunctionCall message as a stream, keeping its OID,
// argument count and the first TapMaxArgSizes argument lengths; everything
// else is skipped without being stored.
type fnCall struct {
	step   fnStep
	field  [4]byte // the fixed-size field being read
	nfield int
	skip   int64 // bytes left to skip in fnFormats or fnArgValue
	oid    uint32
	nargs  int
	seen   int // arguments whose length was read
	sizes  []int32
}

// feed consumes b, the next bytes of the message body.
func (c *fnCall) feed(b []byte) {
	for len(b) > 0 {
		switch c.step {
		case fnDone:
			return
		case fnFormats, fnArgValue:
			n := min(int64(len(b)), c.skip)
			c.skip -= n
			b = b[n:]
			if c.skip == 0 {
				c.skipped()
			}
		default:
			size := 2
			if c.step == fnOID || c.step == fnArgLen {
				size = 4
			}
			n := copy(c.field[c.nfield:size], b)
			c.nfield += n
			b = b[n:]
			if c.nfield == size {
				c.nfield = 0
				c.got(c.field[:size])
			}
		}
	}
}

// got takes the fixed-size field f just read and picks the next step.
func (c *fnCall) got(f []byte) {
	switch c.step {
	case fnOID:
		c.oid, c.step = binary.BigEndian.Uint32(f), fnNFormats
	case fnNFormats:
		c.skip = 2 * int64(max(int16(binary.BigEndian.Uint16(f)), 0))
		c.step = fnFormats
		if c.skip == 0 {
			c.skipped()
		}
	case fnNArgs:
		c.nargs = max(int(int16(binary.BigEndian.Uint16(f))), 0)
		c.nextArg()
	case fnArgLen:
		n := int32(binary.BigEndian.Uint32(f))
		if len(c.sizes) < TapMaxArgSizes {
			c.sizes = append(c.sizes, n)
		}
		c.seen++
		if n <= 0 {
			c.nextArg()
			return
		}
		c.skip, c.step = int64(n), fnArgValue
	}
}

// skipped moves on once the bytes of fnFormats or fnArgValue are skipped.
func (c *fnCall) skipped() {
	if c.step == fnFormats {
		c.step = fnNArgs
		return
	}
	c.nextArg()
}

// nextArg reads the next argument's length, or finishes after the last.
func (c *fnCall) nextArg() {
	if c.seen < c.nargs {
		c.step = fnArgLen
		return
	}
	c.step = fnDone
}
