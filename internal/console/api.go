package console

import (
	"context"
	"errors"
	"net/http"

	"github.com/waypoint-proxy/waypoint/internal/proxy"
)

// This file is the JSON API. Lists are objects with one array field named
// after the endpoint, plus "unreachable" (instance IDs that did not answer)
// when some did not; actions answer a Result.

type sessionsReply struct {
	Sessions    []Session `json:"sessions"`
	Unreachable []string  `json:"unreachable,omitempty"`
}

type identitiesReply struct {
	Identities  []Identity `json:"identities"`
	Unreachable []string   `json:"unreachable,omitempty"`
}

type instancesReply struct {
	Instances []Instance `json:"instances"`
}

type refusalsReply struct {
	Refusals    []Refusal `json:"refusals"`
	Unreachable []string  `json:"unreachable,omitempty"`
}

// Me is who the console thinks the caller is (GET /api/me).
type Me struct {
	Name    string `json:"name"`
	Machine string `json:"machine,omitempty"`
	Via     string `json:"via"`
	Access  string `json:"access"`
}

func (h *handler) apiMe(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	writeJSON(w, http.StatusOK, Me{Name: c.Name, Machine: c.Machine, Via: c.Via, Access: string(c.Access)})
}

func (h *handler) apiSessions(w http.ResponseWriter, r *http.Request) {
	if v, ok := h.view(w, r, filterOf(r)); ok {
		writeJSON(w, http.StatusOK, sessionsReply{Sessions: nonNil(v.Sessions), Unreachable: v.Unreachable})
	}
}

func (h *handler) apiIdentities(w http.ResponseWriter, r *http.Request) {
	if v, ok := h.view(w, r, Filter{}); ok {
		writeJSON(w, http.StatusOK, identitiesReply{Identities: nonNil(v.Identities), Unreachable: v.Unreachable})
	}
}

func (h *handler) apiInstances(w http.ResponseWriter, r *http.Request) {
	if v, ok := h.view(w, r, Filter{}); ok {
		writeJSON(w, http.StatusOK, instancesReply{Instances: nonNil(v.Instances)})
	}
}

func (h *handler) apiRefusals(w http.ResponseWriter, r *http.Request) {
	if v, ok := h.view(w, r, Filter{}); ok {
		writeJSON(w, http.StatusOK, refusalsReply{Refusals: nonNil(v.Refusals), Unreachable: v.Unreachable})
	}
}

// apiTerminate: POST /api/sessions/{id}/terminate[?instance=ID]. 404 when
// no open session has the id, 409 when several instances have one.
func (h *handler) apiTerminate(w http.ResponseWriter, r *http.Request) {
	id, instance := r.PathValue("id"), r.URL.Query().Get("instance")
	if res, ok := h.act(w, r, opTerminate, id, func(ctx context.Context, op proxy.Operator) (Result, error) {
		return h.opts.Source.Terminate(ctx, id, instance, op)
	}); ok {
		writeJSON(w, http.StatusOK, res)
	}
}

// loginOp is an operation on every session of one identity: Source's
// TerminateLogin or Revalidate.
type loginOp func(ctx context.Context, login string, by proxy.Operator) (Result, error)

// apiLogin answers POST /api/identities/{login}/terminate and
// /api/identities/{login}/revalidate: it runs do, named op, on the login in
// the path and answers 200 with its Result (terminate: the sessions ended,
// possibly none; revalidate: how many were checked and closed).
func (h *handler) apiLogin(op string, do loginOp) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		login := r.PathValue("login")
		if res, ok := h.act(w, r, op, login, func(ctx context.Context, by proxy.Operator) (Result, error) {
			return do(ctx, login, by)
		}); ok {
			writeJSON(w, http.StatusOK, res)
		}
	}
}

// actionError maps an action's failure to a status and a message.
func actionError(err error, target string) (int, string) {
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound, "no open session " + target
	case errors.Is(err, ErrAmbiguous):
		return http.StatusConflict, "sessions on several instances have the id " + target + "; name one with ?instance="
	}
	return http.StatusServiceUnavailable, "the action could not be carried out: " + err.Error()
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
