package pgwire

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
)

// UpstreamErrorKind classifies a failed backend login.
type UpstreamErrorKind int

const (
	// Unreachable: the backend could not be reached or spoken to (dial, TLS,
	// timeout, broken connection, unexpected protocol state).
	Unreachable UpstreamErrorKind = iota + 1
	// AuthFailed: the backend rejected the credentials (SQLSTATE 28P01 or
	// 28000), or asked for an authentication method the login does not
	// allow (an *AuthMethodError; nothing was sent).
	AuthFailed
	// BackendError: the backend refused the login for another reason, with
	// its own SQLSTATE (e.g. 3D000 database does not exist, 53300 too many
	// connections, 57P03 starting up).
	BackendError
)

func (k UpstreamErrorKind) String() string {
	switch k {
	case Unreachable:
		return "unreachable"
	case AuthFailed:
		return "auth_failed"
	case BackendError:
		return "backend_error"
	}
	return "unknown"
}

// UpstreamError is a failed backend login.
type UpstreamError struct {
	Kind UpstreamErrorKind
	// Code and Message are the backend's SQLSTATE and message when it sent an
	// ErrorResponse; empty otherwise.
	Code, Message string
	// Err is the cause (a pgconn error; a *pgconn.PgError is reachable with errors.As).
	Err error
}

func (e *UpstreamError) Error() string {
	return fmt.Sprintf("pgwire: backend login (%s): %v", e.Kind, e.Err)
}

func (e *UpstreamError) Unwrap() error { return e.Err }

// classifyConnectError wraps a pgconn.ConnectConfig error in an
// UpstreamError. A method refused by RequireAuth is AuthFailed with an
// *AuthMethodError, which says what to change.
func classifyConnectError(err error) error {
	if ae, ok := AuthMethodRefused(err); ok {
		return &UpstreamError{Kind: AuthFailed, Err: ae}
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return &UpstreamError{Kind: Unreachable, Err: err}
	}
	kind := BackendError
	if pgErr.Code == "28P01" || pgErr.Code == "28000" {
		kind = AuthFailed
	}
	return &UpstreamError{Kind: kind, Code: pgErr.Code, Message: pgErr.Message, Err: err}
}

func upstreamKind(err error) UpstreamErrorKind {
	var ue *UpstreamError
	if errors.As(err, &ue) {
		return ue.Kind
	}
	return 0
}

// IsAuthFailed reports whether err is a backend login refused for its
// credentials or abandoned for the method the backend asked for.
func IsAuthFailed(err error) bool { return upstreamKind(err) == AuthFailed }

// IsUnreachable reports whether err is a backend that could not be reached or
// spoken to.
func IsUnreachable(err error) bool { return upstreamKind(err) == Unreachable }

// BackendErrorInfo returns the backend's SQLSTATE and message when err is a
// BackendError (the server's own words, e.g. `database "x" does not exist`).
func BackendErrorInfo(err error) (code, msg string, ok bool) {
	var ue *UpstreamError
	if errors.As(err, &ue) && ue.Kind == BackendError {
		return ue.Code, ue.Message, true
	}
	return "", "", false
}
