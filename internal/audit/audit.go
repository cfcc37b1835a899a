// Package audit writes an optional statement audit log: one JSON object per
// line for every SQL statement a client sends (simple Query and extended
// Parse messages), every fast-path function call (FunctionCall messages:
// the function's OID and its arguments' count and sizes, never their
// values, as Bind parameters are never logged), with who sent it and where,
// and one per operator action taken in the console on a session (LogAction,
// "kind":"console"). It imports only the standard
// library; the wire-protocol side lives in pgwire.TapQueries.
//
// # Never blocking sessions
//
// Log is called on the session's relay path, so it must not wait for the
// log's destination (a slow disk, a stdout pipe nobody reads). Log encodes
// the entry on the caller's goroutine and hands the line to a bounded queue
// without waiting; one background goroutine writes queued lines in batches.
// When the queue is full — at most QueueLines lines or QueueBytes bytes —
// the entry is dropped and counted (Dropped), rather than stalling every
// session behind the writer. A mutex'd buffered writer was rejected because
// a full buffer makes the session that fills it wait for the write. Operators
// should alert on a growing Dropped count (exported as a metric by the
// caller): for an audit log, a drop is a gap to investigate.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Entry kinds: the protocol message that carried the statement.
const (
	KindQuery        = "query"         // simple query protocol ('Q')
	KindParse        = "parse"         // extended query protocol ('P')
	KindFunctionCall = "function_call" // fast-path function call ('F'), no SQL
)

// MaxSQL is the longest SQL text written, in bytes. Longer text is cut at a
// UTF-8 boundary at or below MaxSQL and the line gets "sql_truncated": true,
// "sql_bytes": the length of the whole text and "sql_sha256": the hex
// SHA-256 of the whole text. Tap with pgwire.TapQueries(c, MaxSQL, …): the
// tap cuts at the same length and reports the whole length and hash.
const MaxSQL = 64 << 10

// Queue bounds. A line is dropped when QueueLines lines or QueueBytes bytes
// are already waiting to be written.
const (
	QueueLines = 4096
	QueueBytes = 16 << 20
)

// maxBatch bounds how many bytes the writer joins into one Write.
const maxBatch = 256 << 10

// Entry is one audited statement. Time zero means "now" (when Log is
// called). Empty strings are omitted from the line.
type Entry struct {
	Time time.Time
	Session
	Kind string // KindQuery, KindParse or KindFunctionCall
	// SQL is the statement text. Text longer than MaxSQL is cut when
	// written.
	SQL string
	// SQLTruncated says SQL was already cut by whoever captured it (for
	// pgwire.TapQueries, TapEvent.Truncated); SQLBytes and SQLSHA256 then
	// describe the whole text, which the Logger no longer has. When false
	// they are ignored and computed from SQL if it is cut here.
	SQLTruncated bool
	SQLBytes     int64
	SQLSHA256    string // hex
	// Function is set for KindFunctionCall: which function, and the
	// arguments' count and sizes. Nil otherwise.
	Function *FunctionCall
}

// Session names the session a line is about. Its fields appear in the
// line under these names; empty ones are left out.
type Session struct {
	Conn     string `json:"conn,omitempty"` // Waypoint's connection id
	Listener string `json:"listener,omitempty"`
	Login    string `json:"login,omitempty"` // the caller's tailnet login, or tags for a tagged node
	Machine  string `json:"machine,omitempty"`
	NodeID   string `json:"node_id,omitempty"`
	Database string `json:"database,omitempty"`
	Role     string `json:"role,omitempty"` // the backend role the session runs as
}

// FunctionCall describes a fast-path function call without its argument
// values.
type FunctionCall struct {
	OID      uint32  `json:"oid"`
	Args     int     `json:"args"`      // how many arguments
	ArgSizes []int32 `json:"arg_sizes"` // byte length of each (-1: NULL); may list only the first ones
}

// line is the JSON shape of one Entry.
type line struct {
	Time string `json:"time"`
	Session
	Kind         string        `json:"kind,omitempty"`
	SQL          string        `json:"sql"`
	SQLTruncated bool          `json:"sql_truncated,omitempty"`
	SQLBytes     int64         `json:"sql_bytes,omitempty"`
	SQLSHA256    string        `json:"sql_sha256,omitempty"`
	Function     *FunctionCall `json:"function,omitempty"`
}

// Logger writes entries as JSON lines. It is safe for concurrent use. Create
// it with Open or New; Close it to flush.
type Logger struct {
	w      io.Writer
	closer io.Closer // closed by Close; nil for New's writer and stdout

	mu     sync.RWMutex // guards closed against sends on a closed queue
	closed bool
	queue  chan []byte

	queued  atomic.Int64 // bytes waiting in queue
	dropped atomic.Int64
	done    chan struct{} // closed when the writer goroutine has exited
	err     error         // first write error; read after done

	closeOnce sync.Once
	closeErr  error
}

// Open opens the audit destination: "stdout", or a file path, opened for
// appending and created with mode 0600 if missing (an existing file keeps
// its mode). Close closes the file; it never closes stdout.
func Open(dest string) (*Logger, error) {
	switch dest {
	case "":
		return nil, errors.New("audit: empty destination: want \"stdout\" or a file path")
	case "stdout":
		return New(os.Stdout), nil
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open log: %w", err)
	}
	l := New(f)
	l.closer = f
	return l, nil
}

// New returns a Logger writing to w. Close does not close w. Writes to w
// come from one goroutine, one batch of whole lines at a time.
func New(w io.Writer) *Logger {
	l := &Logger{
		w:     w,
		queue: make(chan []byte, QueueLines),
		done:  make(chan struct{}),
	}
	go l.run()
	return l
}

// Log queues e for writing and returns without waiting for the write. If
// the queue is full, or the Logger is closed, e is dropped and counted. A nil
// *Logger logs nothing.
func (l *Logger) Log(e Entry) {
	if l == nil {
		return
	}
	b, err := encode(e)
	if err != nil { // cannot happen for a struct of strings; count it anyway
		l.dropped.Add(1)
		return
	}
	if !l.enqueue(b) {
		l.dropped.Add(1)
	}
}

// enqueue hands b to the writer unless the queue is full or closed.
func (l *Logger) enqueue(b []byte) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return false
	}
	if l.queued.Add(int64(len(b))) > QueueBytes {
		l.queued.Add(-int64(len(b)))
		return false
	}
	select {
	case l.queue <- b:
		return true
	default:
		l.queued.Add(-int64(len(b)))
		return false
	}
}

// Dropped returns how many entries were not written: dropped because the
// queue was full or the Logger closed, or lost in a failed write (every line
// of a batch whose Write failed counts, though a failed Write may have
// written part of it).
func (l *Logger) Dropped() int64 {
	if l == nil {
		return 0
	}
	return l.dropped.Load()
}

// Close stops accepting entries, writes everything queued, and closes the
// file Open opened. It returns the first write error the Logger met, if any,
// and the error from closing the file. Close is idempotent: later calls
// return the same result.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		close(l.queue)
		l.mu.Unlock()
		<-l.done
		l.closeErr = l.err
		if l.closer != nil {
			if err := l.closer.Close(); err != nil {
				l.closeErr = errors.Join(l.closeErr, fmt.Errorf("audit: close log: %w", err))
			}
		}
	})
	return l.closeErr
}

// run writes queued lines until the queue is closed and drained. It joins
// whatever is already queued into one batch, so a burst costs few writes and
// a quiet log is written line by line, immediately.
func (l *Logger) run() {
	defer close(l.done)
	batch := make([]byte, 0, 64<<10)
	for b := range l.queue {
		l.queued.Add(-int64(len(b)))
		var n int
		batch, n = l.fill(append(batch[:0], b...))
		l.write(batch, n+1)
	}
}

// fill appends to batch the lines already waiting, up to maxBatch bytes, and
// returns it with the number of lines it added.
func (l *Logger) fill(batch []byte) ([]byte, int) {
	n := 0
	for len(batch) < maxBatch {
		select {
		case b, ok := <-l.queue:
			if !ok {
				return batch, n
			}
			l.queued.Add(-int64(len(b)))
			batch = append(batch, b...)
			n++
		default:
			return batch, n
		}
	}
	return batch, n
}

// write writes one batch of n lines, counting them as dropped on failure.
func (l *Logger) write(batch []byte, n int) {
	if _, err := l.w.Write(batch); err != nil {
		l.dropped.Add(int64(n))
		if l.err == nil {
			l.err = fmt.Errorf("audit: write log: %w", err)
		}
	}
}

// encode returns e as one JSON line, with its SQL cut to MaxSQL.
func encode(e Entry) ([]byte, error) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	ln := line{
		Time: e.Time.UTC().Format(time.RFC3339Nano), Session: e.Session,
		Kind: e.Kind, SQL: e.SQL, Function: e.Function,
	}
	switch {
	case e.SQLTruncated:
		ln.SQL, ln.SQLTruncated, ln.SQLBytes, ln.SQLSHA256 = truncateUTF8(e.SQL, MaxSQL), true, e.SQLBytes, e.SQLSHA256
	case len(e.SQL) > MaxSQL:
		sum := sha256.Sum256([]byte(e.SQL))
		ln.SQL, ln.SQLTruncated, ln.SQLBytes, ln.SQLSHA256 = truncateUTF8(e.SQL, MaxSQL), true, int64(len(e.SQL)), hex.EncodeToString(sum[:])
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "<", ">" and "&" readable in SQL
	if err := enc.Encode(ln); err != nil {
		return nil, fmt.Errorf("audit: encode entry: %w", err)
	}
	return buf.Bytes(), nil // Encode ends the line with '\n'
}

// truncateUTF8 cuts s to at most n bytes and drops a UTF-8 sequence left
// incomplete at the end, by this cut or by an earlier one (when s is valid
// UTF-8 up to the cut; invalid bytes are replaced by U+FFFD in the JSON
// anyway).
func truncateUTF8(s string, n int) string {
	s = s[:min(len(s), n)]
	for i := len(s) - 1; i >= 0 && i >= len(s)-utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) {
			if !utf8.FullRuneInString(s[i:]) {
				return s[:i]
			}
			return s
		}
	}
	return s
}
