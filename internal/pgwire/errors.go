package pgwire

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// writeTimeout bounds SendError and FinishStartup: a client that does not read
// cannot hold a goroutine for longer than this. A variable only for tests.
var writeTimeout = 5 * time.Second

// SQLSTATE codes used by this package.
const (
	codeProtocolViolation  = "08P01"
	codeFeatureUnsupported = "0A000"
	codeInvalidAuthSpec    = "28000"
	codeInternal           = "XX000"
)

// ErrTLSRequired is wrapped by the error Accept returns when a listener with
// TLSMode "require" receives a plaintext StartupMessage.
var ErrTLSRequired = errors.New("pgwire: listener requires TLS")

// ProtocolError reports a client that broke the startup protocol (bad length,
// unknown request code, malformed parameters, unsupported version…).
type ProtocolError struct {
	// Code is the SQLSTATE that describes the violation.
	Code string
	// Msg is safe to show to the client; Accept already sent it when Sent is true.
	Msg string
	// Sent reports whether Accept already sent Msg as an ErrorResponse; when
	// false (e.g. a refused direct-TLS connection, a malformed CancelRequest)
	// nothing should be sent: the connection should just be closed.
	Sent bool
	// Err is the underlying cause, if any.
	Err error
}

func (e *ProtocolError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("pgwire: protocol violation (%s): %s: %v", e.Code, e.Msg, e.Err)
	}
	return fmt.Sprintf("pgwire: protocol violation (%s): %s", e.Code, e.Msg)
}

func (e *ProtocolError) Unwrap() error { return e.Err }

// ClientError is an ErrorResponse for a client. Its text is shown to the user,
// so it must carry no internal detail but should say what to do.
type ClientError struct {
	// Severity is "FATAL" when empty.
	Severity string
	// Code is the SQLSTATE; "XX000" (internal_error) when empty.
	Code string
	// Message is the primary message; Detail and Hint are optional.
	Message, Detail, Hint string
}

func (e ClientError) Error() string {
	return fmt.Sprintf("%s %s: %s", e.severity(), e.code(), e.Message)
}

func (e ClientError) severity() string {
	if e.Severity == "" {
		return "FATAL"
	}
	return e.Severity
}

func (e ClientError) code() string {
	if e.Code == "" {
		return codeInternal
	}
	return e.Code
}

// message returns e as a pgproto3 ErrorResponse.
func (e ClientError) message() *pgproto3.ErrorResponse {
	return &pgproto3.ErrorResponse{
		Severity:            e.severity(),
		SeverityUnlocalized: e.severity(),
		Code:                e.code(),
		Message:             e.Message,
		Detail:              e.Detail,
		Hint:                e.Hint,
	}
}

// WriteError writes e as one ErrorResponse to w. It sets no deadline: use it
// before a Client exists (on a conn whose deadline the caller controls).
func WriteError(w io.Writer, e ClientError) error {
	buf, err := e.message().Encode(nil)
	if err != nil {
		return fmt.Errorf("pgwire: encode error response: %w", err)
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("pgwire: write error response: %w", err)
	}
	return nil
}

// SendError sends e to the client as one ErrorResponse, bounded by a short
// write deadline, and clears the deadline afterwards. It must not run
// concurrently with other writes to c.Conn (e.g. a running relay).
func (c *Client) SendError(e ClientError) error {
	return withWriteDeadline(c.Conn, func() error { return WriteError(c.Conn, e) })
}

// withWriteDeadline runs write with conn's write deadline set to writeTimeout
// from now, then clears the deadline.
func withWriteDeadline(conn net.Conn, write func() error) error {
	if err := conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return fmt.Errorf("pgwire: set write deadline: %w", err)
	}
	err := write()
	if cerr := conn.SetWriteDeadline(time.Time{}); err == nil && cerr != nil {
		err = fmt.Errorf("pgwire: clear write deadline: %w", cerr)
	}
	return err
}
