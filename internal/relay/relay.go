// Package relay copies bytes between a Postgres client and its backend once
// the handshake is over. It knows nothing about the wire protocol: it moves
// bytes both ways, half-closes on EOF, counts what it forwarded, enforces an
// optional byte budget and reports why the session ended. It imports only the
// standard library.
//
// Ownership: Run never closes either connection. The caller owns both and
// closes them after Run returns.
package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBufferSize is the per-direction buffer size used when
// Options.BufferSize is zero.
const DefaultBufferSize = 32 << 10

// Reason says why a relay ended. It is decided by the first event that ended
// (or began to end) the session; later events do not change it.
type Reason int

const (
	// ClientClosed: the client closed its side (EOF); the backend's remaining
	// output was still delivered before Run returned.
	ClientClosed Reason = iota + 1
	// ServerClosed: the backend closed its side (EOF).
	ServerClosed
	// Stopped: the context was cancelled (shutdown, revalidation, duration limit).
	Stopped
	// ByteLimit: Options.MaxBytes was reached.
	ByteLimit
	// Error: a read or write failed with something other than EOF; Result.Err
	// says which side and why.
	Error
)

// String returns a short lowercase name for logs and metric labels.
func (r Reason) String() string {
	switch r {
	case ClientClosed:
		return "client_closed"
	case ServerClosed:
		return "server_closed"
	case Stopped:
		return "stopped"
	case ByteLimit:
		return "byte_limit"
	case Error:
		return "error"
	}
	return "unknown"
}

// Counters are live byte counts of a running relay, safe to read from any
// goroutine while Run is running (for metrics and limit checks). Run adds to
// them; it never resets them, so one Counters may be shared by several runs.
type Counters struct {
	clientToServer atomic.Int64
	serverToClient atomic.Int64
}

// ClientToServer returns the bytes forwarded from client to backend so far.
func (c *Counters) ClientToServer() int64 { return c.clientToServer.Load() }

// ServerToClient returns the bytes forwarded from backend to client so far.
func (c *Counters) ServerToClient() int64 { return c.serverToClient.Load() }

// Budget is a byte cap for Run that may be changed while Run runs, e.g.
// lowered when the caller's grant changes. Create it with NewBudget. It is
// safe for concurrent use.
type Budget struct{ max atomic.Int64 }

// NewBudget returns a Budget of max bytes; 0 or less means unlimited.
func NewBudget(max int64) *Budget {
	b := new(Budget)
	b.Set(max)
	return b
}

// Set changes the cap to max bytes (0 or less: unlimited). It applies from
// the relay's next read on: bytes already forwarded stay forwarded, and if
// they already reach max, that read ends the relay with Reason ByteLimit.
func (b *Budget) Set(max int64) { b.max.Store(max) }

// Max returns the cap; 0 or less means unlimited.
func (b *Budget) Max() int64 { return b.max.Load() }

// Options tune Run. The zero value is ready to use.
type Options struct {
	// MaxBytes caps the bytes forwarded in both directions together; 0 means
	// unlimited. Bytes up to the cap are forwarded, then the relay stops with
	// Reason ByteLimit and the rest of that read is dropped.
	MaxBytes int64
	// Budget, if non-nil, is the cap instead of MaxBytes, and may be changed
	// while Run runs.
	Budget *Budget
	// BufferSize is the size of each direction's copy buffer; 0 means
	// DefaultBufferSize (those buffers are pooled).
	BufferSize int
	// Counters, if non-nil, receive live byte counts while Run runs.
	Counters *Counters
}

// Result is the outcome of Run.
type Result struct {
	// ClientToServer and ServerToClient are the bytes this Run forwarded
	// (written to the other side), per direction.
	ClientToServer, ServerToClient int64
	// Reason is why the relay ended.
	Reason Reason
	// Err is the I/O error behind Reason Error; nil otherwise.
	Err error
}

// Run copies client→server and server→client until both directions have
// ended, and returns what happened.
//
// On EOF from one side Run half-closes the other side's write direction
// (CloseWrite, as *net.TCPConn and *tls.Conn offer) and keeps copying the
// other direction until it ends too. If the destination cannot be half-closed,
// or on any error, on ctx cancellation or when MaxBytes is reached, Run stops
// both directions by setting a past deadline on both connections.
//
// Run closes neither connection: the caller closes both after Run returns.
// When Run stopped the relay it leaves past deadlines on both connections, so
// a caller that writes afterwards (e.g. a FATAL ErrorResponse) must first set
// a fresh deadline. Once Run has returned, ctx no longer affects the conns.
//
// The conns' own deadlines are the caller's until Run stops them: clear them
// before calling Run (an expired read deadline ends the relay with Error).
func Run(ctx context.Context, client, server net.Conn, opts Options) Result {
	s := &session{client: client, server: server, opts: opts}
	if s.opts.Counters == nil {
		s.opts.Counters = new(Counters)
	}
	if s.opts.Budget == nil {
		s.opts.Budget = NewBudget(s.opts.MaxBytes)
	}
	finished := make(chan struct{})
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		select {
		case <-ctx.Done():
			s.end(Stopped, nil)
			s.stop()
		case <-finished:
		}
	}()

	var wg sync.WaitGroup
	var c2s, s2c int64
	wg.Add(2)
	go func() {
		defer wg.Done()
		c2s = s.pipe(server, client, &s.opts.Counters.clientToServer, ClientClosed, "client", "server")
	}()
	go func() {
		defer wg.Done()
		s2c = s.pipe(client, server, &s.opts.Counters.serverToClient, ServerClosed, "server", "client")
	}()
	wg.Wait()
	s.stopOnce.Do(func() {}) // a cancellation from now on must not touch the conns
	close(finished)
	<-watcherDone

	s.mu.Lock()
	defer s.mu.Unlock()
	return Result{ClientToServer: c2s, ServerToClient: s2c, Reason: s.reason, Err: s.err}
}

// session is the shared state of one Run.
type session struct {
	client, server net.Conn
	opts           Options
	total          atomic.Int64 // bytes admitted against the Budget, both directions

	mu     sync.Mutex
	reason Reason
	err    error

	stopOnce sync.Once
}

// end records why the relay ends; the first call wins.
func (s *session) end(r Reason, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reason == 0 {
		s.reason, s.err = r, err
	}
}

// stop unblocks both directions by setting a past deadline on both conns.
func (s *session) stop() {
	s.stopOnce.Do(func() {
		past := time.Unix(1, 0)
		_ = s.client.SetDeadline(past)
		_ = s.server.SetDeadline(past)
	})
}

// admit reserves up to n bytes of the budget and returns how many may be
// forwarded and whether the budget is now exhausted. Bytes are counted even
// while the budget is unlimited, so that a cap set later counts them.
func (s *session) admit(n int) (allowed int, exhausted bool) {
	after := s.total.Add(int64(n))
	before := after - int64(n)
	max := s.opts.Budget.Max()
	switch {
	case max <= 0:
		return n, false
	case before >= max:
		return 0, true
	case after > max:
		return int(max - before), true
	}
	return n, after == max
}

// pipe copies src to dst until src ends, and returns the bytes written to dst.
// onEOF is the Reason recorded when src reports EOF; srcName and dstName
// name the sides in errors.
func (s *session) pipe(dst, src net.Conn, count *atomic.Int64, onEOF Reason, srcName, dstName string) int64 {
	buf, release := s.buffer()
	defer release()
	var written int64
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			allowed, exhausted := s.admit(n)
			w, werr := dst.Write(buf[:allowed])
			written += int64(w)
			count.Add(int64(w))
			if werr != nil {
				s.end(Error, fmt.Errorf("relay: write to %s: %w", dstName, werr))
				s.stop()
				return written
			}
			if exhausted {
				s.end(ByteLimit, nil)
				s.stop()
				return written
			}
		}
		if errors.Is(rerr, io.EOF) {
			s.end(onEOF, nil)
			if !closeWrite(dst) {
				s.stop()
			}
			return written
		}
		if rerr != nil {
			s.end(Error, fmt.Errorf("relay: read from %s: %w", srcName, rerr))
			s.stop()
			return written
		}
	}
}

// closeWrite half-closes c if it supports it, and reports success.
func closeWrite(c net.Conn) bool {
	cw, ok := c.(interface{ CloseWrite() error })
	return ok && cw.CloseWrite() == nil
}

var bufPool = sync.Pool{New: func() any {
	b := make([]byte, DefaultBufferSize)
	return &b
}}

// buffer returns a copy buffer and the function that gives it back.
func (s *session) buffer() ([]byte, func()) {
	if s.opts.BufferSize > 0 && s.opts.BufferSize != DefaultBufferSize {
		return make([]byte, s.opts.BufferSize), func() {}
	}
	bp := bufPool.Get().(*[]byte)
	return *bp, func() { bufPool.Put(bp) }
}
