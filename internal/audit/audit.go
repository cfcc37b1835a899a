// Package audit writes an optional statement audit log: one JSON object per
// line for every SQL statement a client sends (simple Query and extended
// Parse messages), with who sent it and where, and one per operator action
// taken in the console on a session (LogAction, "kind":"console"). It imports only the standard
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

// Entry kinds: the protocol message that carried the SQL.
const (
	KindQuery = "query" // simple query protocol ('Q')
	KindParse = "parse" // extended query protocol ('P')
)

// MaxSQL is the longest SQL text written, in bytes. Longer text is cut at a
// UTF-8 boundary at or below MaxSQL and the line gets "sql_truncated": true
// and "sql_bytes": the length received. To let truncation by
// pgwire.TapQueries be detected too, tap with maxSQL = MaxSQL+1.
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
	Time     time.Time
	Conn     string // Waypoint's connection id
	Listener string
	Login    string // the caller's tailnet login, or tags for a tagged node
	Machine  string
	NodeID   string
	Database string
	Role     string // the backend role the session runs as
	Kind     string // KindQuery or KindParse
	SQL      string
}

// line is the JSON shape of one Entry.
type line struct {
	Time         string `json:"time"`
	Conn         string `json:"conn,omitempty"`
	Listener     string `json:"listener,omitempty"`
	Login        string `json:"login,omitempty"`
	Machine      string `json:"machine,omitempty"`
	NodeID       string `json:"node_id,omitempty"`
	Database     string `json:"database,omitempty"`
	Role         string `json:"role,omitempty"`
	Kind         string `json:"kind,omitempty"`
	SQL          string `json:"sql"`
	SQLTruncated bool   `json:"sql_truncated,omitempty"`
	SQLBytes     int    `json:"sql_bytes,omitempty"`
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
		Time: e.Time.UTC().Format(time.RFC3339Nano), Conn: e.Conn, Listener: e.Listener,
		Login: e.Login, Machine: e.Machine, NodeID: e.NodeID, Database: e.Database,
		Role: e.Role, Kind: e.Kind, SQL: e.SQL,
	}
	if len(e.SQL) > MaxSQL {
		ln.SQL, ln.SQLTruncated, ln.SQLBytes = truncateUTF8(e.SQL, MaxSQL), true, len(e.SQL)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "<", ">" and "&" readable in SQL
	if err := enc.Encode(ln); err != nil {
		return nil, fmt.Errorf("audit: encode entry: %w", err)
	}
	return buf.Bytes(), nil // Encode ends the line with '\n'
}

// truncateUTF8 cuts s to at most n bytes without splitting a UTF-8 sequence
// (when s is valid UTF-8; invalid bytes are replaced by U+FFFD in the JSON
// anyway).
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && cut > n-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
