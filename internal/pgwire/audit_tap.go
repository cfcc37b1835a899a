package pgwire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"sync"
)

// Kinds of statement TapQueries reports: the protocol message that carried
// the SQL.
const (
	TapKindQuery = "query" // simple Query ('Q')
	TapKindParse = "parse" // extended-protocol Parse ('P')
)

// DefaultTapMaxSQL is the cap TapQueries uses when maxSQL is zero or less.
const DefaultTapMaxSQL = 64 << 10

// errNoCloseWrite is returned by CloseWrite when the wrapped connection
// cannot half-close.
var errNoCloseWrite = errors.New("pgwire: connection does not support CloseWrite")

// TapQueries wraps the client→server byte stream of an established session
// (after startup, i.e. regular typed messages: 1-byte type + 4-byte length)
// and calls fn for every simple Query ('Q') and extended Parse ('P')
// message's SQL text, passing all bytes through unchanged. It handles
// messages split across Read calls and many messages in one Read, and never
// allocates based on an untrusted length: SQL longer than maxSQL bytes is
// reported cut to its first maxSQL bytes (to tell a cut from SQL of exactly
// maxSQL bytes, pass one more than the consumer's limit), while the bytes
// still pass through. A malformed stream (a length below 4) stops tapping
// but keeps relaying. maxSQL <= 0 means DefaultTapMaxSQL.
//
// fn runs on the goroutine that calls Read, once per message, after the
// Read that completed the SQL returns from the underlying connection and
// before the bytes are handed to the caller; it must be fast and must not
// block (audit.Logger.Log qualifies). SQL text is reported in whatever
// client_encoding the session uses, not necessarily UTF-8. A nil fn returns
// c itself.
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
func TapQueries(c net.Conn, maxSQL int, fn func(kind, sql string)) net.Conn {
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
	stStopped                  // malformed stream: no more tapping
)

// headerLen is the size of a typed message's header: type byte + int32 length.
const headerLen = 5

// queryScanner is a streaming parser of client messages. It keeps no more
// than one header and maxSQL bytes of SQL, whatever lengths the client
// declares.
type queryScanner struct {
	maxSQL int
	fn     func(kind, sql string)

	state scanState
	hdr   [headerLen]byte
	nhdr  int
	left  int64  // body bytes of the current message not yet consumed
	kind  string // TapKindQuery or TapKindParse while in stName/stSQL
	sql   []byte // SQL collected so far, at most maxSQL bytes
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
	s.sql = s.sql[:0]
	switch typ {
	case 'Q':
		s.state, s.kind = stSQL, TapKindQuery
	case 'P':
		s.state, s.kind = stName, TapKindParse
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
		default:
			return rest
		}
	}
	return rest
}

// collect appends SQL bytes, keeping at most maxSQL.
func (s *queryScanner) collect(b []byte) {
	if room := s.maxSQL - len(s.sql); len(b) > room {
		b = b[:room]
	}
	s.sql = append(s.sql, b...)
}

// keepSQLBuffer is the largest SQL buffer kept between messages; a bigger
// one, grown for one long statement, is released so an idle session holds
// little memory.
const keepSQLBuffer = 4 << 10

// report passes the collected SQL to fn, once per message.
func (s *queryScanner) report() {
	s.fn(s.kind, string(s.sql))
	s.state = stSkip
	if cap(s.sql) > keepSQLBuffer {
		s.sql = nil
	}
}

// endMessage finishes a message. SQL whose terminating NUL never came
// (a malformed message the server will reject) is still reported: the
// audit log shows what the client sent.
func (s *queryScanner) endMessage() {
	if s.state == stSQL {
		s.report()
	}
	s.state = stHeader
}
