package proxy

import (
	"context"
	"log/slog"
	"time"
)

// logSession writes the one log line every connection gets.
func (s *Server) logSession(sess *session, err error) {
	attrs := []any{
		"conn", sess.id,
		"remote", sess.remote,
		"login", sess.peer.Subject(),
		"machine", sess.peer.MachineName,
		"duration", time.Since(sess.start).Round(time.Millisecond),
	}
	if sess.client != nil && sess.client.Cancel == nil {
		attrs = append(attrs, "database", sess.client.Params["database"])
	}
	if sess.role != "" {
		eff := sess.effective()
		attrs = append(attrs, "role", sess.role, "preset", string(eff.Preset), "preset_limited", eff.PresetLimited, "spare", sess.spare)
	}
	if sess.up != nil {
		attrs = append(attrs,
			"bytes_in", sess.result.ClientToServer,
			"bytes_out", sess.result.ServerToClient,
			"close", sess.result.Reason.String())
	}
	level := slog.LevelInfo
	outcome := "ok"
	if sess.client != nil && sess.client.Cancel != nil {
		outcome = "cancel"
	}
	if err != nil {
		k := kindOf(err)
		outcome = k.String()
		level = logLevel(k)
		attrs = append(attrs, "err", err.Error())
	}
	attrs = append(attrs, "outcome", outcome)
	s.log.Log(context.Background(), level, "connection", attrs...)
	s.opts.Metrics.ConnClosed(s.opts.Listener, outcome, sess.result.ClientToServer, sess.result.ServerToClient, time.Since(sess.start))
}
