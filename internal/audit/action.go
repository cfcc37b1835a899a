package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// KindConsole marks a line that records an operator's action in the console
// rather than a statement; such lines carry no "sql".
const KindConsole = "console"

// Action is one thing an operator did to a session through Waypoint's
// console: who did it, what, and to which session. Time zero means "now".
// Empty strings are omitted from the line.
type Action struct {
	Time time.Time
	// Action names what was done, e.g. "terminate" or "revalidate".
	Action string
	// By is the operator: a tailnet login (or tags), or "local" for the
	// console's loopback face. ByMachine and ByNode name the operator's
	// tailnet node; Via is "tailnet" or "local".
	By, ByMachine, ByNode, Via string
	// Session is the session acted on.
	Session
	// Outcome says what happened to the session, e.g. "terminated",
	// "kept" or "closed".
	Outcome string
}

// actionLine is the JSON shape of one Action.
type actionLine struct {
	Time      string `json:"time"`
	Kind      string `json:"kind"`
	Action    string `json:"action"`
	By        string `json:"by"`
	ByMachine string `json:"by_machine,omitempty"`
	ByNode    string `json:"by_node,omitempty"`
	Via       string `json:"via,omitempty"`
	Session
	Outcome string `json:"outcome,omitempty"`
}

// LogAction queues a as one line with "kind":"console", exactly like Log:
// it never waits for the destination, and a full queue drops and counts
// the line. A nil *Logger logs nothing.
func (l *Logger) LogAction(a Action) {
	if l == nil {
		return
	}
	b, err := encodeAction(a)
	if err != nil {
		l.dropped.Add(1)
		return
	}
	if !l.enqueue(b) {
		l.dropped.Add(1)
	}
}

// encodeAction returns a as one JSON line.
func encodeAction(a Action) ([]byte, error) {
	if a.Time.IsZero() {
		a.Time = time.Now()
	}
	ln := actionLine{
		Time: a.Time.UTC().Format(time.RFC3339Nano), Kind: KindConsole, Action: a.Action,
		By: a.By, ByMachine: a.ByMachine, ByNode: a.ByNode, Via: a.Via,
		Session: a.Session, Outcome: a.Outcome,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ln); err != nil {
		return nil, fmt.Errorf("audit: encode action: %w", err)
	}
	return buf.Bytes(), nil
}
