package console

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
)

// This file is the web page: server-rendered with html/template (which
// escapes every value), no script, no external asset, a style sheet inlined
// under the response's CSP nonce. Terminating goes through a confirmation
// page whose form posts back with a form token; the list reloads itself.

//go:embed page.html
var pageFS embed.FS

var pageTemplates = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"bytes":    humanBytes,
	"ago":      ago,
	"clock":    func(t time.Time) string { return t.Local().Format("15:04:05") },
	"stamp":    func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"limit":    limitText,
	"pathEsc":  url.PathEscape,
	"queryEsc": url.QueryEscape,
}).ParseFS(pageFS, "page.html"))

// pageData is what every page template gets.
type pageData struct {
	Title   string
	Nonce   string
	Caller  Caller
	Admin   bool
	Refresh int    // seconds; 0: no reload
	Reload  string // the URL the page reloads to
	Token   string // the form token
	Notice  string
	Error   string
	View    View
	Filter  Filter
	// Listeners are the listener names seen, for the filter.
	Listeners []string
	// Hostnames maps instance IDs to host names, to show sessions'
	// instances by name.
	Hostnames map[string]string
	// Confirm is set on a confirmation page.
	Confirm *confirmation
}

// confirmation describes the action a confirmation page asks about.
type confirmation struct {
	Heading  string
	Action   string // form action path
	Instance string
	Button   string
	Sessions []Session
	Effect   string
}

// base fills in what every page has.
func (h *handler) base(r *http.Request) pageData {
	c := callerOf(r)
	return pageData{
		Title: h.opts.Title, Nonce: nonceOf(r), Caller: c,
		Admin: c.Access.Allows(authz.ConsoleAdmin),
		Token: h.tokens.issue(c.csrfSubject(), time.Now()),
	}
}

// render writes template name with data and status code.
func (h *handler) render(w http.ResponseWriter, code int, name string, data pageData) {
	var buf bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		h.log.Error("console: render page", "template", name, "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

// renderError shows msg on a page of its own.
func (h *handler) renderError(w http.ResponseWriter, r *http.Request, code int, msg string) {
	d := pageData{Title: h.opts.Title, Nonce: nonceOf(r), Caller: callerOf(r), Error: msg}
	h.render(w, code, "error", d)
}

// page: GET / — everything, reloading itself.
func (h *handler) page(w http.ResponseWriter, r *http.Request) {
	v, ok := h.view(w, r, Filter{})
	if !ok {
		return
	}
	d := h.base(r)
	d.Filter = filterOf(r)
	for _, s := range v.Sessions {
		if !slices.Contains(d.Listeners, s.Listener) {
			d.Listeners = append(d.Listeners, s.Listener)
		}
	}
	slices.Sort(d.Listeners)
	v.Sessions = slices.DeleteFunc(v.Sessions, func(s Session) bool { return !d.Filter.match(s) })
	d.View = v
	d.Hostnames = hostnames(v.Instances)
	d.Refresh = int(h.opts.Refresh.Round(time.Second) / time.Second)
	d.Reload = "/" + filterQuery(d.Filter)
	d.Notice = notice(r.URL.Query())
	h.render(w, http.StatusOK, "page", d)
}

// hostnames maps each instance's ID to its host name.
func hostnames(instances []Instance) map[string]string {
	m := make(map[string]string, len(instances))
	for _, in := range instances {
		m[in.ID] = in.Hostname
	}
	return m
}

// filterQuery is f as a query string ("" or "?listener=…&login=…").
func filterQuery(f Filter) string {
	q := url.Values{}
	if f.Listener != "" {
		q.Set("listener", f.Listener)
	}
	if f.Login != "" {
		q.Set("login", f.Login)
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// confirmTerminate: GET /sessions/{id}/terminate — are you sure?
func (h *handler) confirmTerminate(w http.ResponseWriter, r *http.Request) {
	id, instance := r.PathValue("id"), r.URL.Query().Get("instance")
	v, ok := h.view(w, r, Filter{})
	if !ok {
		return
	}
	matching := slices.DeleteFunc(v.Sessions, func(s Session) bool {
		return s.ID != id || (instance != "" && s.Instance != instance)
	})
	if len(matching) == 0 {
		h.renderError(w, r, http.StatusNotFound, "There is no open session "+id+" any more.")
		return
	}
	d := h.base(r)
	d.Hostnames = hostnames(v.Instances)
	d.Confirm = &confirmation{
		Heading: "Terminate session " + id + "?", Action: "/sessions/" + url.PathEscape(id) + "/terminate",
		Instance: instance, Button: "Terminate session", Sessions: matching,
		Effect: "The client gets FATAL 57P01 \"your session was terminated by a Waypoint operator\", and its backend session is terminated, so a running query stops.",
	}
	h.render(w, http.StatusOK, "confirm", d)
}

// confirmTerminateLogin: GET /identities/{login}/terminate — are you sure?
func (h *handler) confirmTerminateLogin(w http.ResponseWriter, r *http.Request) {
	login := r.PathValue("login")
	v, ok := h.view(w, r, Filter{Login: login})
	if !ok {
		return
	}
	d := h.base(r)
	d.Hostnames = hostnames(v.Instances)
	d.Confirm = &confirmation{
		Heading: fmt.Sprintf("Terminate every session of %s?", login), Action: "/identities/" + url.PathEscape(login) + "/terminate",
		Button: "Terminate all sessions", Sessions: v.Sessions,
		Effect: "Each client gets FATAL 57P01 \"your session was terminated by a Waypoint operator\" and each backend session is terminated. Their grant is unchanged: they may reconnect.",
	}
	h.render(w, http.StatusOK, "confirm", d)
}

// checkForm verifies a page form's token; it answers 403 itself when the
// token is missing, stale or someone else's.
func (h *handler) checkForm(w http.ResponseWriter, r *http.Request) bool {
	if err := r.ParseForm(); err == nil && h.tokens.valid(r.PostForm.Get("csrf"), callerOf(r).csrfSubject(), time.Now()) {
		return true
	}
	h.fail(w, r, http.StatusForbidden, "This form has expired or was not issued to you; reload the console page and try again.")
	return false
}

// formTerminate: POST /sessions/{id}/terminate from the confirmation page.
func (h *handler) formTerminate(w http.ResponseWriter, r *http.Request) {
	if !h.checkForm(w, r) {
		return
	}
	id, instance := r.PathValue("id"), r.PostForm.Get("instance")
	if _, ok := h.act(w, r, opTerminate, id, func(ctx context.Context, op proxy.Operator) (Result, error) {
		return h.opts.Source.Terminate(ctx, id, instance, op)
	}); ok {
		done(w, r, url.Values{"done": {opTerminate}, "id": {id}})
	}
}

// formLogin answers POST /identities/{login}/terminate and
// /identities/{login}/revalidate from the page: it runs do, named op, on the
// login in the path and sends the browser back to the page with op, the
// login and what summary says of the Result.
func (h *handler) formLogin(op string, do loginOp, summary func(Result) url.Values) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !h.checkForm(w, r) {
			return
		}
		login := r.PathValue("login")
		if res, ok := h.act(w, r, op, login, func(ctx context.Context, by proxy.Operator) (Result, error) {
			return do(ctx, login, by)
		}); ok {
			q := summary(res)
			q.Set("done", op)
			q.Set("login", login)
			done(w, r, q)
		}
	}
}

// terminatedSummary is what the page says after a terminate: how many
// sessions ended.
func terminatedSummary(res Result) url.Values {
	return url.Values{"n": {strconv.Itoa(len(res.Sessions))}}
}

// revalidatedSummary is what the page says after a re-check: how many
// sessions were checked and how many closed.
func revalidatedSummary(res Result) url.Values {
	return url.Values{"n": {strconv.Itoa(res.Checked)}, "closed": {strconv.Itoa(res.Closed)}}
}

// done redirects a form post back to the list (post/redirect/get), which
// shows what happened.
func done(w http.ResponseWriter, r *http.Request, q url.Values) {
	http.Redirect(w, r, "/?"+q.Encode(), http.StatusSeeOther)
}

// notice is the sentence the list shows after an action: built from fixed
// words and the values the redirect carries (escaped by the template).
func notice(q url.Values) string {
	switch q.Get("done") {
	case opTerminate:
		return fmt.Sprintf("Session %s was terminated.", q.Get("id"))
	case opTerminateLogin:
		return fmt.Sprintf("%s session(s) of %s were terminated.", numberOr(q.Get("n")), q.Get("login"))
	case opRevalidate:
		return fmt.Sprintf("The grant of %s was re-checked: %s session(s) checked, %s closed.", q.Get("login"), numberOr(q.Get("n")), numberOr(q.Get("closed")))
	}
	return ""
}

// numberOr returns s if it is a number, else "?".
func numberOr(s string) string {
	if _, err := strconv.Atoi(s); err != nil {
		return "?"
	}
	return s
}

// humanBytes formats n like 1.5 kB.
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}

// ago formats how long ago t was, coarsely: "just now", "42s ago",
// "3m05s ago", "2h10m ago", "3d ago".
func ago(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := time.Since(t)
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds ago", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// limitText is "2 / 10" or "2 / ∞".
func limitText(u ListenerUse) string {
	if u.MaxConns == 0 {
		return fmt.Sprintf("%d / ∞", u.Sessions)
	}
	return fmt.Sprintf("%d / %d", u.Sessions, u.MaxConns)
}
