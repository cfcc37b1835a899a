package provision

import (
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/waypoint-proxy/waypoint/internal/provision/plan"
)

// Error and its kinds are defined by the planner, which returns them for
// requests it refuses before anything runs; the executor returns the same
// type for backend failures. They are aliases, so errors.As and KindOf work
// whichever package produced the error.
type (
	// Error is every error Ensure, Explain and Cleanup return (possibly
	// wrapped); see plan.Error.
	Error = plan.Error
	// ErrorKind classifies a provisioning failure; see plan.ErrorKind.
	ErrorKind = plan.ErrorKind
)

// The kinds of provisioning failure; see plan.ErrorKind.
const (
	Backend       = plan.Backend
	CannotGrant   = plan.CannotGrant
	MissingObject = plan.MissingObject
	BadSQL        = plan.BadSQL
	Clash         = plan.Clash
	Closed        = plan.Closed
	Unreachable   = plan.Unreachable
	AdminLogin    = plan.AdminLogin
)

// KindOf returns the Kind of the first *Error in err's chain, or 0.
func KindOf(err error) ErrorKind { return plan.KindOf(err) }

// backendErr classifies a failure of an admin connection.
func backendErr(msg string, err error) error {
	return &Error{Kind: backendKind(err), Msg: msg, Err: err}
}

// backendKind tells an unreachable backend and a refused admin login apart
// from other backend failures.
func backendKind(err error) ErrorKind {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000") {
		return AdminLogin
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return Unreachable
	}
	return Backend
}

// isDeadConn reports whether err means the admin connection died under the
// statement (the server shut down or restarted, the network dropped): the
// work was not committed and is worth one retry on a fresh connection.
func isDeadConn(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "57P") || strings.HasPrefix(pgErr.Code, "08")
	}
	return pgconn.SafeToRetry(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}
