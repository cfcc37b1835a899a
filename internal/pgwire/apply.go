package pgwire

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Setting is one run-time parameter to set on a session: what a client
// would have sent in its startup packet (or inside options as -c).
type Setting struct {
	Name, Value string
}

// Apply sets settings on an idle upstream session as its startup packet
// would have (pg_catalog.set_config(name, value, false): the raw value,
// session scope), in one round trip, and records the ParameterStatus
// messages the backend sends in u.ParameterStatus, so that FinishStartup
// then shows the client what a session started with those parameters
// shows. On error the session is in an unknown state: the caller must
// close u.Conn. ctx bounds the exchange. An empty settings is a no-op.
func (u *Upstream) Apply(ctx context.Context, settings []Setting) error {
	if len(settings) == 0 {
		return nil
	}
	if deadline, ok := ctx.Deadline(); ok {
		if err := u.Conn.SetDeadline(deadline); err != nil {
			return fmt.Errorf("pgwire: apply settings: %w", err)
		}
		defer u.Conn.SetDeadline(time.Time{})
	}
	fe := pgproto3.NewFrontend(u.Conn, u.Conn)
	fe.Send(&pgproto3.Query{String: setConfigSQL(settings)})
	if err := fe.Flush(); err != nil {
		return fmt.Errorf("pgwire: apply settings: %w", err)
	}
	return u.readUntilReady(fe)
}

// readUntilReady reads the answer to one simple query, recording
// ParameterStatus, until ReadyForQuery; the first ErrorResponse is returned
// (after ReadyForQuery, so the session stays in step).
func (u *Upstream) readUntilReady(fe *pgproto3.Frontend) error {
	var failed error
	for {
		msg, err := fe.Receive()
		if err != nil {
			return fmt.Errorf("pgwire: apply settings: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.ParameterStatus:
			u.ParameterStatus[m.Name] = m.Value
		case *pgproto3.ErrorResponse:
			if failed == nil {
				failed = &UpstreamError{Kind: BackendError, Code: m.Code, Message: m.Message,
					Err: errors.New("apply settings: " + m.Severity + " " + m.Code + ": " + m.Message)}
			}
		case *pgproto3.ReadyForQuery:
			if failed == nil && m.TxStatus != 'I' {
				failed = fmt.Errorf("pgwire: apply settings: session not idle after SET (status %q)", m.TxStatus)
			}
			return failed
		}
	}
}

// setConfigSQL is one statement that calls set_config for every setting,
// in order. Names and values are escape-string literals (E'…'), correct
// whatever standard_conforming_strings is.
func setConfigSQL(settings []Setting) string {
	calls := make([]string, len(settings))
	for i, s := range settings {
		calls[i] = "pg_catalog.set_config(" + escapeLiteral(s.Name) + ", " + escapeLiteral(s.Value) + ", false)"
	}
	return "SELECT " + strings.Join(calls, ", ")
}

// escapeLiteral quotes s as an escape-string literal: E'…' with \ and '
// doubled as backslash escapes.
func escapeLiteral(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "E'" + r.Replace(s) + "'"
}
