package proxy

import (
	"net"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/audit"
	"github.com/waypoint-proxy/waypoint/internal/pgwire"
)

// auditTap returns the client connection to relay from: tapped for the
// statement audit log when it is on, the plain connection otherwise.
func (s *Server) auditTap(sess *session) net.Conn {
	if s.opts.Audit == nil {
		return sess.client.Conn
	}
	eff := sess.effective()
	return pgwire.TapQueries(sess.client.Conn, audit.MaxSQL, func(ev pgwire.TapEvent) {
		e := auditEntry(ev)
		e.Time, e.Conn, e.Listener = time.Now(), sess.id, s.opts.Listener
		e.Login, e.Machine, e.NodeID = sess.peer.Subject(), sess.peer.MachineName, sess.peer.NodeID
		e.Database, e.Role = eff.Database, sess.role
		s.opts.Audit.Log(e)
	})
}

// auditEntry is what the audit log records of one tapped message: the
// statement (cut, with its full length and hash, when the tap cut it), or a
// function call's OID and argument count and sizes.
func auditEntry(ev pgwire.TapEvent) audit.Entry {
	e := audit.Entry{Kind: ev.Kind, SQL: ev.SQL}
	if ev.Truncated {
		e.SQLTruncated, e.SQLBytes, e.SQLSHA256 = true, ev.SQLBytes, ev.SQLSHA256
	}
	if ev.Kind == pgwire.TapKindFunctionCall {
		e.Function = &audit.FunctionCall{OID: ev.FunctionOID, Args: ev.ArgCount, ArgSizes: ev.ArgSizes}
	}
	return e
}
