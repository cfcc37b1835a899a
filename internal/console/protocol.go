package console

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/waypoint-proxy/waypoint/internal/proxy"
)

// This file is what instances ask each other through the Fleet, and how one
// instance carries a request out on its own listeners.

// The operations one instance asks another.
const (
	opView           = "view"
	opTerminate      = "terminate"
	opTerminateLogin = "terminate_identity"
	opRevalidate     = "revalidate"
)

// request is one operation for one instance.
type request struct {
	Op    string         `json:"op"`
	ID    string         `json:"id,omitempty"`    // opTerminate
	Login string         `json:"login,omitempty"` // opTerminateLogin, opRevalidate
	By    proxy.Operator `json:"by"`
}

func (r request) encode() []byte {
	b, _ := json.Marshal(r) // strings only: always marshals
	return b
}

// reply is one instance's answer on the wire: a view or a result, or why
// it could not.
type reply struct {
	View   *local  `json:"view,omitempty"`
	Result *Result `json:"result,omitempty"`
	Error  string  `json:"error,omitempty"`
}

// answer carries out a request another instance sent through the Fleet.
// The request is untrusted (anyone who can publish on Redis can send one),
// so it is validated before anything runs.
func (h *Hub) answer(ctx context.Context, body []byte) []byte {
	var req request
	var rep reply
	if err := json.Unmarshal(body, &req); err != nil {
		rep.Error = "undecodable request: " + err.Error()
	} else if a := h.run(ctx, req); a.err != nil {
		rep.Error = a.err.Error()
	} else if req.Op == opView {
		rep.View = &a.view
	} else {
		rep.Result = &a.result
	}
	b, _ := json.Marshal(rep)
	return b
}

// decodeAnswer reads another instance's reply.
func decodeAnswer(body []byte) answer {
	var rep reply
	if err := json.Unmarshal(body, &rep); err != nil {
		return answer{err: fmt.Errorf("console: undecodable answer: %w", err)}
	}
	switch {
	case rep.Error != "":
		return answer{err: fmt.Errorf("console: the instance refused: %s", rep.Error)}
	case rep.View != nil:
		return answer{view: *rep.View}
	case rep.Result != nil:
		return answer{result: *rep.Result}
	}
	return answer{err: fmt.Errorf("console: empty answer")}
}

// run carries out req on this instance's listeners.
func (h *Hub) run(ctx context.Context, req request) answer {
	if req.Op != opView && (req.By.Login == "" || req.By.Via == "") {
		return answer{err: fmt.Errorf("console: %s without an operator", req.Op)}
	}
	switch req.Op {
	case opView:
		return answer{view: h.localView()}
	case opTerminate:
		return answer{result: h.terminateLocal(ctx, req)}
	case opTerminateLogin:
		return answer{result: h.terminateLoginLocal(ctx, req)}
	case opRevalidate:
		return answer{result: h.revalidateLocal(ctx, req)}
	}
	return answer{err: fmt.Errorf("console: unknown operation %q", req.Op)}
}

func (h *Hub) terminateLocal(ctx context.Context, req request) Result {
	res := Result{Action: opTerminate, Sessions: []Session{}}
	for _, srv := range h.opts.Servers {
		if info, ok := srv.Terminate(ctx, req.ID, req.By); ok {
			res.Sessions = append(res.Sessions, fromProxy(h.self.ID, info))
		}
	}
	return res
}

func (h *Hub) terminateLoginLocal(ctx context.Context, req request) Result {
	res := Result{Action: opTerminateLogin, Sessions: []Session{}}
	for _, srv := range h.opts.Servers {
		for _, info := range srv.TerminateSubject(ctx, req.Login, req.By) {
			res.Sessions = append(res.Sessions, fromProxy(h.self.ID, info))
		}
	}
	return res
}

func (h *Hub) revalidateLocal(ctx context.Context, req request) Result {
	res := Result{Action: opRevalidate, Sessions: []Session{}}
	for _, srv := range h.opts.Servers {
		checked, closed := srv.RevalidateSubject(ctx, req.Login, req.By)
		res.Checked += checked
		res.Closed += closed
	}
	return res
}
