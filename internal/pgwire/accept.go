package pgwire

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// TLSMode says how a listener treats TLS. The zero value means TLSOff.
type TLSMode string

const (
	// TLSOff answers SSLRequest with 'N' and refuses direct TLS.
	TLSOff TLSMode = "off"
	// TLSOptional offers TLS (when a TLSConfig is set) and also accepts plaintext.
	TLSOptional TLSMode = "optional"
	// TLSRequire offers TLS and refuses plaintext StartupMessages with an
	// ErrorResponse. CancelRequests are accepted in plaintext, as PostgreSQL
	// does, because libpq before 17 always sends them unencrypted.
	TLSRequire TLSMode = "require"
)

// DefaultMaxStartupSize is PostgreSQL's MAX_STARTUP_PACKET_LENGTH.
const DefaultMaxStartupSize = 10000

// alpnPostgres is the ALPN protocol name PostgreSQL 17 requires for direct TLS.
const alpnPostgres = "postgresql"

// Request codes of the packets that may open a connection.
const (
	cancelRequestCode = 80877102
	sslRequestCode    = 80877103
	gssEncRequestCode = 80877104
)

// tlsRecordHandshake is the first byte of a TLS ClientHello record. A startup
// packet can never start with it (its length would exceed 300 MB).
const tlsRecordHandshake = 0x16

// FrontOptions configure Accept. The zero value accepts plaintext only.
type FrontOptions struct {
	// TLSMode is TLSOff when empty.
	TLSMode TLSMode
	// TLSConfig serves TLS. nil means TLS is unavailable: SSLRequest is
	// answered 'N' and direct TLS is refused, whatever TLSMode says. Accept
	// clones it, raises MinVersion to TLS 1.2 and sets NextProtos to
	// "postgresql"; it is never modified.
	TLSConfig *tls.Config
	// MaxStartupSize caps the length of any startup packet; 0 means
	// DefaultMaxStartupSize.
	MaxStartupSize int
}

// CancelKey is the (process ID, secret key) pair of BackendKeyData and
// CancelRequest in protocol 3.0. It is comparable and may be used as a map
// key; only the whole pair identifies a session (see ClientKey).
type CancelKey struct {
	ProcessID uint32
	SecretKey uint32
}

// Client is a client whose StartupMessage (or CancelRequest) has been read.
type Client struct {
	// Conn is the connection to use from now on: the conn passed to Accept,
	// or a *tls.Conn wrapping it. Closing Conn closes the original conn.
	Conn net.Conn
	// Params are the startup parameters (user, database, options,
	// application_name, …) without any "_pq_." protocol options. database
	// defaults to user, as in PostgreSQL. nil for a CancelRequest.
	Params map[string]string
	// TLS reports whether TLS was negotiated; ServerName is the SNI the client
	// sent, if any.
	TLS        bool
	ServerName string
	// Cancel is non-nil when the client sent a CancelRequest instead of a
	// StartupMessage. Nothing is sent back for a cancel: close the conn.
	Cancel *CancelKey
}

// Accept runs the client side of the handshake on conn until a
// StartupMessage or CancelRequest has been read; on success exactly one of
// Client.Params and Client.Cancel is set.
//
// ctx bounds the whole handshake: its deadline is applied to conn, and its
// cancellation interrupts blocked reads and writes. The caller should always
// pass a ctx with a deadline. Accept clears conn's deadline before returning.
//
// Where the protocol allows, Accept itself sends the client an ErrorResponse
// for a violation and returns a *ProtocolError (see its Sent field); a
// plaintext startup on a TLSRequire listener yields an error wrapping
// ErrTLSRequired. I/O errors (the client left, the deadline passed) are
// returned wrapped; errors.Is(err, ctx.Err()) holds when ctx ended the
// handshake. Accept never closes conn: the caller does, on success or failure.
func Accept(ctx context.Context, conn net.Conn, opts FrontOptions) (*Client, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	release := bindDeadline(ctx, conn)
	h := &handshake{opts: opts, raw: conn, conn: conn}
	c, err := h.run()
	release()
	if err != nil {
		return nil, withContextError(ctx, err)
	}
	return c, nil
}

// withContextError makes err match ctx's error when ctx ended the handshake.
// A deadline can expire on the socket an instant before ctx notices, so a
// socket timeout at or after ctx's deadline counts as ctx's deadline.
func withContextError(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if cerr == nil && errors.Is(err, os.ErrDeadlineExceeded) {
		if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
			cerr = context.DeadlineExceeded
		}
	}
	if cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	return err
}

func (o FrontOptions) validate() error {
	switch o.TLSMode {
	case "", TLSOff, TLSOptional, TLSRequire:
	default:
		return fmt.Errorf("pgwire: invalid TLS mode %q (want off, optional or require)", o.TLSMode)
	}
	if o.MaxStartupSize < 0 {
		return fmt.Errorf("pgwire: negative MaxStartupSize %d", o.MaxStartupSize)
	}
	return nil
}

// tlsOffered reports whether the listener answers SSLRequest with 'S'.
func (o FrontOptions) tlsOffered() bool {
	return o.TLSConfig != nil && o.TLSMode != "" && o.TLSMode != TLSOff
}

func (o FrontOptions) maxStartupSize() int {
	if o.MaxStartupSize == 0 {
		return DefaultMaxStartupSize
	}
	return o.MaxStartupSize
}

// bindDeadline applies ctx's deadline to conn and makes ctx's cancellation
// interrupt blocked I/O. The returned func undoes both; after it returns, ctx
// can no longer touch conn.
func bindDeadline(ctx context.Context, conn net.Conn) (release func()) {
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		_ = conn.SetDeadline(time.Unix(1, 0))
	})
	return func() {
		if !stop() {
			<-fired
		}
		_ = conn.SetDeadline(time.Time{})
	}
}

// handshake is the state of one Accept.
type handshake struct {
	opts FrontOptions
	raw  net.Conn  // the conn passed to Accept
	conn net.Conn  // raw, or the TLS conn over it
	tls  *tls.Conn // non-nil once TLS is up

	sslRequested, gssRequested bool
	pending                    []byte // bytes read from raw but not yet consumed
}

// run reads packets until a StartupMessage or CancelRequest arrives.
func (h *handshake) run() (*Client, error) {
	if err := h.directTLS(); err != nil {
		return nil, err
	}
	for {
		body, err := h.readPacket()
		if err != nil {
			return nil, err
		}
		switch binary.BigEndian.Uint32(body) {
		case sslRequestCode:
			err = h.sslRequest(body)
		case gssEncRequestCode:
			err = h.gssEncRequest(body)
		case cancelRequestCode:
			return h.cancelRequest(body)
		default:
			return h.startup(body)
		}
		if err != nil {
			return nil, err
		}
	}
}

// directTLS peeks at the first byte: a TLS handshake record means the client
// uses PostgreSQL 17's sslnegotiation=direct.
func (h *handshake) directTLS() error {
	var first [1]byte
	if _, err := io.ReadFull(h.raw, first[:]); err != nil {
		return fmt.Errorf("pgwire: read startup packet: %w", err)
	}
	if first[0] != tlsRecordHandshake {
		h.pending = first[:]
		return nil
	}
	if !h.opts.tlsOffered() {
		// The client speaks TLS and cannot read a plaintext ErrorResponse.
		return &ProtocolError{Code: codeProtocolViolation, Msg: "direct TLS connection refused: TLS is not enabled on this listener"}
	}
	return h.startTLS(&prefixConn{Conn: h.raw, prefix: first[:]}, true)
}

// readPacket reads one length-prefixed startup packet and returns its body
// (starting with the 4-byte code or version). The length is checked against
// the cap before anything is allocated.
func (h *handshake) readPacket() ([]byte, error) {
	var hdr [8]byte
	n := copy(hdr[:], h.pending)
	h.pending = nil
	if _, err := io.ReadFull(h.conn, hdr[n:]); err != nil {
		return nil, fmt.Errorf("pgwire: read startup packet: %w", err)
	}
	length := binary.BigEndian.Uint32(hdr[:4])
	if length < uint32(len(hdr)) {
		return nil, h.fail(codeProtocolViolation, "invalid length of startup packet", nil)
	}
	if length > uint32(h.opts.maxStartupSize()) {
		return nil, h.fail(codeProtocolViolation, "startup packet too large", fmt.Errorf("length %d", length))
	}
	body := make([]byte, length-4)
	copy(body, hdr[4:])
	if _, err := io.ReadFull(h.conn, body[4:]); err != nil {
		return nil, fmt.Errorf("pgwire: read startup packet body: %w", err)
	}
	return body, nil
}

// sslRequest answers an SSLRequest: 'S' and a TLS handshake, or 'N'.
func (h *handshake) sslRequest(body []byte) error {
	if err := h.encryptionRequest(body, &pgproto3.SSLRequest{}, &h.sslRequested,
		"invalid SSLRequest", "unexpected SSLRequest: TLS was already negotiated"); err != nil {
		return err
	}
	if !h.opts.tlsOffered() {
		return h.writeByte('N')
	}
	if err := h.writeByte('S'); err != nil {
		return err
	}
	return h.startTLS(h.raw, false)
}

// gssEncRequest refuses GSS encryption; the client may go on in plaintext or
// ask for TLS.
func (h *handshake) gssEncRequest(body []byte) error {
	if err := h.encryptionRequest(body, &pgproto3.GSSEncRequest{}, &h.gssRequested,
		"invalid GSSENCRequest", "unexpected GSSENCRequest"); err != nil {
		return err
	}
	return h.writeByte('N')
}

// encryptionRequest checks an SSLRequest or GSSENCRequest body (msg decodes
// it) and that it is the first of its kind (*asked) before any TLS, then
// records it. It fails the handshake with invalid or repeated, a protocol
// violation, otherwise.
func (h *handshake) encryptionRequest(body []byte, msg pgproto3.FrontendMessage, asked *bool, invalid, repeated string) error {
	if err := msg.Decode(body); err != nil || len(body) != 4 {
		return h.fail(codeProtocolViolation, invalid, err)
	}
	if h.tls != nil || *asked {
		return h.fail(codeProtocolViolation, repeated, nil)
	}
	*asked = true
	return nil
}

// writeByte writes one of the single-byte answers to SSLRequest or
// GSSENCRequest. They are not protocol messages, so pgproto3 has no type for them.
func (h *handshake) writeByte(b byte) error {
	if _, err := h.conn.Write([]byte{b}); err != nil {
		return fmt.Errorf("pgwire: answer encryption request: %w", err)
	}
	return nil
}

// startTLS runs the server side of a TLS handshake over base. Direct TLS
// must negotiate ALPN "postgresql", as PostgreSQL 17 requires.
func (h *handshake) startTLS(base net.Conn, direct bool) error {
	tc := tls.Server(base, serverTLSConfig(h.opts.TLSConfig))
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("pgwire: TLS handshake: %w", err)
	}
	h.tls, h.conn = tc, tc
	if direct && tc.ConnectionState().NegotiatedProtocol != alpnPostgres {
		return h.fail(codeProtocolViolation, `direct TLS connections must negotiate ALPN protocol "postgresql"`, nil)
	}
	return nil
}

// cancelRequest parses a CancelRequest. Nothing is ever sent back.
func (h *handshake) cancelRequest(body []byte) (*Client, error) {
	var msg pgproto3.CancelRequest
	if err := msg.Decode(body); err != nil {
		return nil, &ProtocolError{Code: codeProtocolViolation, Msg: "invalid CancelRequest", Err: err}
	}
	if len(msg.SecretKey) != 4 {
		// Waypoint speaks protocol 3.0 to clients, so every key it issued is 4 bytes.
		return nil, &ProtocolError{Code: codeProtocolViolation, Msg: fmt.Sprintf("CancelRequest with a %d-byte key; Waypoint issues 4-byte keys", len(msg.SecretKey))}
	}
	c := h.client()
	c.Cancel = &CancelKey{ProcessID: msg.ProcessID, SecretKey: binary.BigEndian.Uint32(msg.SecretKey)}
	return c, nil
}

// client returns a Client for the connection as negotiated so far.
func (h *handshake) client() *Client {
	c := &Client{Conn: h.conn}
	if h.tls != nil {
		c.TLS = true
		c.ServerName = h.tls.ConnectionState().ServerName
	}
	return c
}

// fail sends the client a FATAL ErrorResponse (best effort) and returns the
// matching *ProtocolError.
func (h *handshake) fail(code, msg string, cause error) error {
	err := WriteError(h.conn, ClientError{Code: code, Message: msg})
	return &ProtocolError{Code: code, Msg: msg, Sent: err == nil, Err: cause}
}
