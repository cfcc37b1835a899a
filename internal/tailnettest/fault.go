package tailnettest

// StopControl makes the control server unreachable, as an outage of the
// coordination server would: it stops accepting connections and drops every
// open one, including the nodes' map streams. Nodes keep their current
// network map and DERP keeps relaying, so existing peers can still reach
// each other; identity and grant changes (NewClient, SetGrant) no longer
// reach anyone. It is idempotent; the test's cleanup still shuts the server
// down as usual.
func (tn *Tailnet) StopControl() {
	tn.net.StopControl()
}
