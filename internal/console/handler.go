package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
)

// Source is what the console shows and acts on. *Hub implements it; tests
// may pass a fake.
type Source interface {
	View(ctx context.Context, f Filter) (View, error)
	Terminate(ctx context.Context, id, instance string, by proxy.Operator) (Result, error)
	TerminateLogin(ctx context.Context, login string, by proxy.Operator) (Result, error)
	Revalidate(ctx context.Context, login string, by proxy.Operator) (Result, error)
}

// Options configure a console Handler. Source and Authorizer are required.
type Options struct {
	// Source supplies the data and carries out actions.
	Source Source
	// Authorizer says who each request comes from and what they may do:
	// Tailnet on the tailnet face, Token on the loopback face.
	Authorizer Authorizer
	// Hosts are the host names requests may carry in Host besides IP
	// literals (e.g. the node's name and its MagicDNS name, or
	// "localhost"); any other Host is refused (421), which stops DNS
	// rebinding.
	Hosts []string
	// Title names this Waypoint on the page, e.g. its tailnet host name.
	Title string
	// Refresh is how often the page reloads itself. Zero means 5 s.
	Refresh time.Duration
	// Logger receives one line per action. Nil means slog.Default().
	Logger *slog.Logger
}

// handler serves the console: the JSON API under /api/ and the page.
type handler struct {
	opts   Options
	log    *slog.Logger
	tokens *formTokens
	cop    *http.CrossOriginProtection
	mux    *http.ServeMux
}

// Handler returns the console's HTTP handler: the JSON API (GET
// /api/sessions, /api/identities, /api/instances, /api/refusals, /api/me;
// POST /api/sessions/{id}/terminate, /api/identities/{login}/terminate and
// /api/identities/{login}/revalidate) and the web page (GET /, with
// confirmation pages and form posts under /sessions/ and /identities/).
//
// Every request is checked, in order: its Host (421 unless it names this
// console), for POST the cross-origin protection (403), then the caller
// (401 or 403 with a message saying what grant is needed), then that the
// caller's access covers the route: view for GET, admin for POST.
func Handler(opts Options) (http.Handler, error) {
	switch {
	case opts.Source == nil:
		return nil, errors.New("console: Options.Source is required")
	case opts.Authorizer == nil:
		return nil, errors.New("console: Options.Authorizer is required")
	}
	if opts.Refresh <= 0 {
		opts.Refresh = 5 * time.Second
	}
	h := &handler{opts: opts, log: opts.Logger, tokens: newFormTokens(), cop: http.NewCrossOriginProtection(), mux: http.NewServeMux()}
	if h.log == nil {
		h.log = slog.Default()
	}
	h.routes()
	return h, nil
}

// routes registers every endpoint with the access it needs.
func (h *handler) routes() {
	view, admin, src := authz.ConsoleView, authz.ConsoleAdmin, h.opts.Source
	h.handle("GET /api/me", view, h.apiMe)
	h.handle("GET /api/sessions", view, h.apiSessions)
	h.handle("GET /api/identities", view, h.apiIdentities)
	h.handle("GET /api/instances", view, h.apiInstances)
	h.handle("GET /api/refusals", view, h.apiRefusals)
	h.handle("POST /api/sessions/{id}/terminate", admin, h.apiTerminate)
	h.handle("POST /api/identities/{login}/terminate", admin, h.apiLogin(opTerminateLogin, src.TerminateLogin))
	h.handle("POST /api/identities/{login}/revalidate", admin, h.apiLogin(opRevalidate, src.Revalidate))
	h.handle("GET /{$}", view, h.page)
	h.handle("GET /sessions/{id}/terminate", admin, h.confirmTerminate)
	h.handle("POST /sessions/{id}/terminate", admin, h.formTerminate)
	h.handle("GET /identities/{login}/terminate", admin, h.confirmTerminateLogin)
	h.handle("POST /identities/{login}/terminate", admin, h.formLogin(opTerminateLogin, src.TerminateLogin, terminatedSummary))
	h.handle("POST /identities/{login}/revalidate", admin, h.formLogin(opRevalidate, src.Revalidate, revalidatedSummary))
}

type callerKey struct{}

// callerOf returns the authorized caller of r.
func callerOf(r *http.Request) Caller {
	c, _ := r.Context().Value(callerKey{}).(Caller)
	return c
}

type nonceKey struct{}

func nonceOf(r *http.Request) string {
	n, _ := r.Context().Value(nonceKey{}).(string)
	return n
}

// handle registers fn for pattern, reachable only by callers with need.
func (h *handler) handle(pattern string, need authz.ConsoleAccess, fn http.HandlerFunc) {
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		c := callerOf(r)
		if c.Access == authz.ConsoleNone {
			h.refuse(w, r, c)
			return
		}
		if !c.Access.Allows(need) {
			c.Why = fmt.Sprintf("%s has console %s access; terminating sessions and re-checking grants needs %s in the tailnet policy.",
				c.Name, c.Access, `"console": "admin"`)
			h.refuse(w, r, c)
			return
		}
		fn(w, r)
	})
}

// ServeHTTP runs the checks every request passes, then the route.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	nonce := newNonce()
	securityHeaders(w, nonce)
	if !allowedHost(r.Host, h.opts.Hosts) {
		http.Error(w, "this console does not answer to the host name "+r.Host, http.StatusMisdirectedRequest)
		return
	}
	if err := h.cop.Check(r); err != nil {
		h.fail(w, r, http.StatusForbidden, "cross-origin request refused: state-changing requests must come from the console's own page")
		return
	}
	c := h.opts.Authorizer.Authorize(r)
	ctx := context.WithValue(r.Context(), callerKey{}, c)
	ctx = context.WithValue(ctx, nonceKey{}, nonce)
	h.mux.ServeHTTP(w, r.WithContext(ctx))
}

// refuse answers a caller who may not do this: 401 with a Basic challenge
// when the authorizer asks for credentials, else 403, with the reason.
func (h *handler) refuse(w http.ResponseWriter, r *http.Request, c Caller) {
	code := http.StatusForbidden
	if c.Challenge {
		w.Header().Set("WWW-Authenticate", `Basic realm="Waypoint console", charset="UTF-8"`)
		code = http.StatusUnauthorized
	}
	h.fail(w, r, code, c.Why)
}

// isAPI reports whether r is for the JSON API.
func isAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }

// fail answers an error: JSON {"error": msg} on the API, a small page
// otherwise.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	if isAPI(r) {
		writeJSON(w, code, map[string]string{"error": msg})
		return
	}
	h.renderError(w, r, code, msg)
}

// writeJSON writes v as indented JSON with status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// view gathers the view for r, answering 503 itself when it cannot.
func (h *handler) view(w http.ResponseWriter, r *http.Request, f Filter) (View, bool) {
	v, err := h.opts.Source.View(r.Context(), f)
	if err != nil {
		h.log.Warn("console: cannot gather the view", "err", err)
		h.fail(w, r, http.StatusServiceUnavailable, "Waypoint cannot gather the sessions of its instances right now (shared state unreachable); try again shortly.")
		return View{}, false
	}
	return v, true
}

// filterOf reads ?listener= and ?login=.
func filterOf(r *http.Request) Filter {
	q := r.URL.Query()
	return Filter{Listener: q.Get("listener"), Login: q.Get("login")}
}

// act runs an operator action on target as the caller, records it
// (recordAction) and, when it failed, answers the request with the
// failure's status (actionError). It returns the result and whether the
// action succeeded; on success the caller answers.
func (h *handler) act(w http.ResponseWriter, r *http.Request, op, target string,
	do func(context.Context, proxy.Operator) (Result, error)) (Result, bool) {
	res, err := do(r.Context(), callerOf(r).Operator())
	h.recordAction(r, op, target, res, err)
	if err != nil {
		code, msg := actionError(err, target)
		h.fail(w, r, code, msg)
		return res, false
	}
	return res, true
}

// recordAction logs one console action with its caller and outcome.
func (h *handler) recordAction(r *http.Request, action, target string, res Result, err error) {
	c := callerOf(r)
	attrs := []any{"action", action, "target", target, "by", c.Name, "by_machine", c.Machine, "by_node", c.NodeID,
		"via", c.Via, "sessions", len(res.Sessions)}
	if action == opRevalidate {
		attrs = append(attrs, "checked", res.Checked, "closed", res.Closed)
	}
	if len(res.Unreachable) > 0 {
		attrs = append(attrs, "unreachable", strings.Join(res.Unreachable, ","))
	}
	if err != nil {
		attrs = append(attrs, "err", err.Error())
	}
	h.log.Info("console action", attrs...)
}
