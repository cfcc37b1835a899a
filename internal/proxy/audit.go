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
	return pgwire.TapQueries(sess.client.Conn, audit.MaxSQL+1, func(kind, sql string) {
		s.opts.Audit.Log(audit.Entry{
			Time: time.Now(), Conn: sess.id, Listener: s.opts.Listener,
			Login: sess.peer.Subject(), Machine: sess.peer.MachineName, NodeID: sess.peer.NodeID,
			Database: eff.Database, Role: sess.role, Kind: kind, SQL: sql,
		})
	})
}
