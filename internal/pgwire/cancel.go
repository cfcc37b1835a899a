package pgwire

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgproto3"
)

// CancelBackend asks the backend to cancel the query running on up, with the
// backend's own key, over a new connection to up.Addr made with the same
// dialer and, when up.TLS is set, TLS with the same configuration (so the key
// is not exposed in plaintext). Like libpq it waits for the server to close
// the connection, so the cancel has been processed when it returns. ctx
// bounds the whole exchange. As in PostgreSQL, success does not mean a query
// was cancelled.
func CancelBackend(ctx context.Context, up *Upstream) error {
	dial := dialFunc(up.dial)
	raw, err := dial(ctx, "tcp", up.Addr)
	if err != nil {
		return fmt.Errorf("pgwire: cancel: dial backend: %w", err)
	}
	defer raw.Close()
	release := bindDeadline(ctx, raw)
	defer release()

	conn := raw
	if up.TLS != nil {
		if conn, err = cancelTLS(raw, up.TLS); err != nil {
			return err
		}
	}
	msg := &pgproto3.CancelRequest{ProcessID: up.Key.ProcessID, SecretKey: up.Key.secretBytes()}
	buf, err := msg.Encode(nil)
	if err != nil {
		return fmt.Errorf("pgwire: cancel: encode: %w", err)
	}
	if _, err := conn.Write(buf); err != nil {
		return fmt.Errorf("pgwire: cancel: write: %w", err)
	}
	// The server sends nothing back; it closes once the cancel is handled.
	// The request is delivered once written, so how the wait ends (EOF, a
	// TLS connection closed without close_notify, ctx) does not matter.
	_, _ = io.Copy(io.Discard, conn)
	return nil
}

// cancelTLS negotiates TLS with SSLRequest on a cancel connection.
func cancelTLS(raw net.Conn, cfg *tls.Config) (net.Conn, error) {
	buf, err := (&pgproto3.SSLRequest{}).Encode(nil)
	if err != nil {
		return nil, fmt.Errorf("pgwire: cancel: encode SSLRequest: %w", err)
	}
	if _, err := raw.Write(buf); err != nil {
		return nil, fmt.Errorf("pgwire: cancel: write SSLRequest: %w", err)
	}
	var answer [1]byte
	if _, err := io.ReadFull(raw, answer[:]); err != nil {
		return nil, fmt.Errorf("pgwire: cancel: read SSLRequest answer: %w", err)
	}
	if answer[0] != 'S' {
		return nil, errors.New("pgwire: cancel: backend refused TLS on the cancel connection")
	}
	tc := tls.Client(raw, cfg.Clone())
	if err := tc.Handshake(); err != nil {
		return nil, fmt.Errorf("pgwire: cancel: TLS handshake: %w", err)
	}
	return tc, nil
}
