package console

import (
	"errors"
	"net/http"
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
	res, err := h.opts.Source.Terminate(r.Context(), id, instance, callerOf(r).Operator())
	h.recordAction(r, opTerminate, id, res, err)
	if err != nil {
		code, msg := actionError(err, id)
		h.fail(w, r, code, msg)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// apiTerminateLogin: POST /api/identities/{login}/terminate. 200 with the
// sessions ended (possibly none).
func (h *handler) apiTerminateLogin(w http.ResponseWriter, r *http.Request) {
	login := r.PathValue("login")
	res, err := h.opts.Source.TerminateLogin(r.Context(), login, callerOf(r).Operator())
	h.recordAction(r, opTerminateLogin, login, res, err)
	if err != nil {
		code, msg := actionError(err, login)
		h.fail(w, r, code, msg)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// apiRevalidate: POST /api/identities/{login}/revalidate. 200 with how
// many sessions were checked and closed.
func (h *handler) apiRevalidate(w http.ResponseWriter, r *http.Request) {
	login := r.PathValue("login")
	res, err := h.opts.Source.Revalidate(r.Context(), login, callerOf(r).Operator())
	h.recordAction(r, opRevalidate, login, res, err)
	if err != nil {
		code, msg := actionError(err, login)
		h.fail(w, r, code, msg)
		return
	}
	writeJSON(w, http.StatusOK, res)
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
