package console

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/identity"
)

var quiet = slog.New(slog.DiscardHandler)

// Tailnet callers of the tests, by address.
const (
	adminAddr   = "100.64.0.10"
	viewerAddr  = "100.64.0.11"
	nobodyAddr  = "100.64.0.12"
	invalidAddr = "100.64.0.13"
	taggedAddr  = "100.64.0.14"
	unknownAddr = "100.64.0.99"
)

func peer(login, machine, caps string) identity.Peer {
	p := identity.Peer{LoginName: login, MachineName: machine, NodeID: "n-" + machine, Addr: netip.MustParseAddr("100.64.0.1")}
	if caps != "" {
		p.Caps = []json.RawMessage{json.RawMessage(caps)}
	}
	return p
}

var testResolver = fakeResolver{
	adminAddr:   peer("ops@example.com", "ops-laptop", `[{"console":"admin"}]`),
	viewerAddr:  peer("viewer@example.com", "desk", `[{"console":"view"}]`),
	nobodyAddr:  peer("alice@example.com", "laptop", `[{"backends":{"pg-main":{"pg":{"databases":{"appdb":{"permissions":["readonly"]}}}}}}]`),
	invalidAddr: peer("typo@example.com", "box", `[{"console":"superuser"}]`),
	taggedAddr:  {LoginName: identity.TaggedLogin, Tags: []string{"tag:ops"}, MachineName: "bastion", NodeID: "n-bastion", Caps: []json.RawMessage{json.RawMessage(`{"console":"view"}`)}},
}

func testView() View {
	started := time.Now().Add(-90 * time.Second)
	s := Session{ID: "1-abc", Instance: "inst-a", Listener: "pg-main", Login: "alice@example.com", Machine: "laptop", Node: "nA",
		ClientAddr: "100.64.0.20:51234", Database: "appdb", Role: "wp_alice_laptop_appdb", Preset: "readonly", MaxConns: 10,
		Started: started, BytesIn: 1200, BytesOut: 45000, State: "relaying", BackendPID: 4242}
	n := 1
	return View{
		Sessions:   []Session{s},
		Identities: identities([]Session{s}),
		Instances:  []Instance{{ID: "inst-a", Hostname: "waypoint-db", Started: started, LastHeartbeat: time.Now(), Health: HealthOK, Sessions: &n, Self: true}},
		Refusals: []Refusal{{Time: time.Now(), Instance: "inst-a", ID: "2-def", Listener: "pg-main", Login: "mallory@example.com", Machine: "evil",
			Database: "billing", Reason: "no_database", SQLState: "28000", Message: `mallory@example.com (evil) has no grant for database "billing" on listener "pg-main"`}},
		Instance: "inst-a", At: time.Now(),
	}
}

// newTestHandler serves a fakeSource on the tailnet face, answering to
// "waypoint-db".
func newTestHandler(t *testing.T) (*fakeSource, http.Handler) {
	t.Helper()
	src := &fakeSource{view: testView(), result: Result{Action: "terminate", Sessions: testView().Sessions}}
	h, err := Handler(Options{Source: src, Authorizer: Tailnet{Resolver: testResolver}, Hosts: []string{"waypoint-db", "waypoint-db.tail1234.ts.net"}, Title: "waypoint-db", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return src, h
}

// do sends one request from the tailnet address from.
func do(h http.Handler, method, target, from string, mod func(*http.Request)) *httptest.ResponseRecorder {
	var body io.Reader
	if method == http.MethodPost && mod == nil {
		body = strings.NewReader("")
	}
	r := httptest.NewRequest(method, target, body)
	r.Host = "waypoint-db:8080"
	r.RemoteAddr = from + ":40000"
	if mod != nil {
		mod(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestHandler_Access: who may look and who may act, on the API and the
// page. A refusal says which grant is needed.
func TestHandler_Access(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		target   string
		from     string
		want     int
		wantBody []string
	}{
		{"admin lists", "GET", "/api/sessions", adminAddr, 200, []string{`"login": "alice@example.com"`}},
		{"viewer lists", "GET", "/api/sessions", viewerAddr, 200, []string{`"id": "1-abc"`}},
		{"tagged viewer lists", "GET", "/api/identities", taggedAddr, 200, []string{`"identities"`}},
		{"no console grant", "GET", "/api/sessions", nobodyAddr, 403, []string{"alice@example.com (laptop) has no console access", `\"console\": \"view\"`, `\"console\": \"admin\"`, "redo.com/cap/waypoint"}},
		{"invalid console grant", "GET", "/api/instances", invalidAddr, 403, []string{"invalid", "superuser"}},
		{"unknown node", "GET", "/api/refusals", unknownAddr, 403, []string{"could not identify your tailnet node"}},
		{"viewer cannot terminate", "POST", "/api/sessions/1-abc/terminate", viewerAddr, 403, []string{"viewer@example.com has console view access", `\"console\": \"admin\"`}},
		{"viewer cannot revalidate", "POST", "/api/identities/alice@example.com/revalidate", viewerAddr, 403, []string{"view access"}},
		{"nobody cannot terminate", "POST", "/api/sessions/1-abc/terminate", nobodyAddr, 403, []string{"has no console access"}},
		{"admin terminates", "POST", "/api/sessions/1-abc/terminate", adminAddr, 200, []string{`"action": "terminate"`}},
		{"viewer sees the page", "GET", "/", viewerAddr, 200, []string{"alice@example.com", "wp_alice_laptop_appdb"}},
		{"nobody gets a 403 page", "GET", "/", nobodyAddr, 403, []string{"has no console access", "&#34;console&#34;: &#34;view&#34;"}},
		{"viewer cannot open a confirmation", "GET", "/sessions/1-abc/terminate", viewerAddr, 403, []string{"view access"}},
		{"unknown path", "GET", "/api/nothing", adminAddr, 404, nil},
		{"wrong method", "DELETE", "/api/sessions/1-abc/terminate", adminAddr, 405, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, h := newTestHandler(t)
			w := do(h, tt.method, tt.target, tt.from, nil)
			if w.Code != tt.want {
				t.Fatalf("%s %s from %s: got %d, want %d\n%s", tt.method, tt.target, tt.from, w.Code, tt.want, w.Body)
			}
			for _, s := range tt.wantBody {
				if !strings.Contains(w.Body.String(), s) {
					t.Errorf("body lacks %q:\n%s", s, w.Body)
				}
			}
			if tt.want != 200 && len(src.recorded()) > 0 {
				t.Errorf("a refused request acted: %v", src.recorded())
			}
		})
	}
}

// TestHandler_ActionsCarryTheCaller: an action reaches the source with the
// operator's identity, for the log and the audit log.
func TestHandler_ActionsCarryTheCaller(t *testing.T) {
	src, h := newTestHandler(t)
	for _, target := range []string{"/api/sessions/1-abc/terminate?instance=inst-a", "/api/identities/alice@example.com/terminate", "/api/identities/tag:ci,tag:db/revalidate"} {
		if w := do(h, "POST", target, adminAddr, nil); w.Code != 200 {
			t.Fatalf("POST %s: %d %s", target, w.Code, w.Body)
		}
	}
	want := []string{
		"terminate 1-abc @inst-a by ops@example.com via tailnet",
		"terminate_identity alice@example.com by ops@example.com",
		"revalidate tag:ci,tag:db by ops@example.com",
	}
	if got := src.recorded(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("actions = %q, want %q", got, want)
	}
}

func TestHandler_ActionErrors(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{ErrNotFound, 404},
		{ErrAmbiguous, 409},
	}
	for _, tt := range tests {
		src, h := newTestHandler(t)
		src.actErr = tt.err
		if w := do(h, "POST", "/api/sessions/9-zzz/terminate", adminAddr, nil); w.Code != tt.want || !strings.Contains(w.Body.String(), `"error"`) {
			t.Errorf("Terminate failing with %v: got %d %s, want %d with an error", tt.err, w.Code, w.Body, tt.want)
		}
	}
	src, h := newTestHandler(t)
	src.err = io.ErrUnexpectedEOF
	if w := do(h, "GET", "/api/sessions", adminAddr, nil); w.Code != 503 {
		t.Errorf("with the view failing: got %d, want 503", w.Code)
	}
}

// TestHandler_HostAndCrossOrigin: a Host that is not this console (DNS
// rebinding) is refused; a cross-site POST is refused before it is
// authorized; a POST without browser headers (the CLI) passes.
func TestHandler_HostAndCrossOrigin(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*http.Request)
		want int
	}{
		{"rebinding host", func(r *http.Request) { r.Host = "evil.example:8080" }, 421},
		{"IP literal host", func(r *http.Request) { r.Host = "100.64.0.1:8080" }, 200},
		{"IPv6 literal host", func(r *http.Request) { r.Host = "[fd7a:115c:a1e0::1]:8080" }, 200},
		{"MagicDNS name", func(r *http.Request) { r.Host = "WAYPOINT-DB.tail1234.ts.net." }, 200},
		{"cross-site fetch", func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") }, 403},
		{"foreign origin", func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") }, 403},
		{"same origin", func(r *http.Request) { r.Header.Set("Origin", "http://waypoint-db:8080") }, 200},
		{"same-origin fetch", func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "same-origin") }, 200},
		{"no browser headers", func(r *http.Request) {}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, h := newTestHandler(t)
			w := do(h, "POST", "/api/sessions/1-abc/terminate", adminAddr, func(r *http.Request) {
				r.Body = io.NopCloser(strings.NewReader(""))
				tt.mod(r)
			})
			if w.Code != tt.want {
				t.Fatalf("got %d, want %d: %s", w.Code, tt.want, w.Body)
			}
			if acted := len(src.recorded()) > 0; acted != (tt.want == 200) {
				t.Errorf("acted = %v, want %v", acted, tt.want == 200)
			}
		})
	}
}

var tokenRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// TestHandler_PageForms: the page's forms work with the token the page
// issued to this caller, and not without it or with another caller's.
func TestHandler_PageForms(t *testing.T) {
	src, h := newTestHandler(t)
	page := do(h, "GET", "/sessions/1-abc/terminate?instance=inst-a", adminAddr, nil)
	if page.Code != 200 || !strings.Contains(page.Body.String(), "Terminate session 1-abc?") {
		t.Fatalf("confirmation page: %d\n%s", page.Code, page.Body)
	}
	m := tokenRE.FindStringSubmatch(page.Body.String())
	if m == nil {
		t.Fatalf("no form token on the confirmation page:\n%s", page.Body)
	}
	adminTok := m[1]
	// A second admin's token (another node), to check binding.
	otherAdmin := "100.64.0.15"
	testResolver[otherAdmin] = peer("ops2@example.com", "ops2-laptop", `{"console":"admin"}`)
	defer delete(testResolver, otherAdmin)
	other := tokenRE.FindStringSubmatch(do(h, "GET", "/", otherAdmin, nil).Body.String())
	if other == nil {
		t.Fatal("no form token on the page of the second admin")
	}

	form := func(tok string) func(*http.Request) {
		return func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader(url.Values{"csrf": {tok}, "instance": {"inst-a"}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Origin", "http://waypoint-db:8080")
		}
	}
	for _, tt := range []struct {
		name string
		tok  string
		want int
	}{
		{"no token", "", 403},
		{"forged token", "1700000000.AAAA", 403},
		{"another caller's token", other[1], 403},
		{"the caller's token", adminTok, 303},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := do(h, "POST", "/sessions/1-abc/terminate", adminAddr, form(tt.tok))
			if w.Code != tt.want {
				t.Fatalf("got %d, want %d\n%s", w.Code, tt.want, w.Body)
			}
			if tt.want == 303 {
				loc := w.Header().Get("Location")
				if !strings.Contains(loc, "done=terminate") || !strings.Contains(loc, "id=1-abc") {
					t.Errorf("redirect to %q, want the list with a notice", loc)
				}
				list := do(h, "GET", loc, adminAddr, nil)
				if !strings.Contains(list.Body.String(), "Session 1-abc was terminated.") {
					t.Errorf("list after the redirect lacks the notice:\n%s", list.Body)
				}
			}
		})
	}
	if got := src.recorded(); len(got) != 1 || got[0] != "terminate 1-abc @inst-a by ops@example.com via tailnet" {
		t.Errorf("actions = %q, want exactly the one with a valid token", got)
	}
}

func TestFormTokens(t *testing.T) {
	ft := newFormTokens()
	now := time.Now()
	tok := ft.issue("tailnet|n1|ops", now)
	tests := []struct {
		name    string
		tok     string
		subject string
		at      time.Time
		want    bool
	}{
		{"fresh", tok, "tailnet|n1|ops", now, true},
		{"an hour later", tok, "tailnet|n1|ops", now.Add(time.Hour), true},
		{"expired", tok, "tailnet|n1|ops", now.Add(formTokenTTL + time.Minute), false},
		{"from the future", ft.issue("tailnet|n1|ops", now.Add(time.Hour)), "tailnet|n1|ops", now, false},
		{"other subject", tok, "tailnet|n2|ops", now, false},
		{"other key", newFormTokens().issue("tailnet|n1|ops", now), "tailnet|n1|ops", now, false},
		{"garbage", "x", "tailnet|n1|ops", now, false},
		{"empty", "", "tailnet|n1|ops", now, false},
	}
	for _, tt := range tests {
		if got := ft.valid(tt.tok, tt.subject, tt.at); got != tt.want {
			t.Errorf("%s: valid = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestHandler_PageEscapesAndHidesSecrets: values from the tailnet (a login,
// a machine name) cannot inject markup, the style carries the response's
// CSP nonce, and the page carries no password, verifier or statement.
func TestHandler_PageEscapesAndHidesSecrets(t *testing.T) {
	src, h := newTestHandler(t)
	src.view.Sessions[0].Machine = `<script>alert(1)</script>`
	src.view.Refusals[0].Message = `"><img src=x onerror=alert(1)>`
	w := do(h, "GET", "/", adminAddr, nil)
	body := w.Body.String()
	if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
		t.Errorf("page carries unescaped markup:\n%s", body)
	}
	csp := w.Header().Get("Content-Security-Policy")
	m := regexp.MustCompile(`'nonce-([^']+)'`).FindStringSubmatch(csp)
	if m == nil || !strings.Contains(body, `<style nonce="`+m[1]+`">`) {
		t.Errorf("CSP %q and the page's style nonce do not match", csp)
	}
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "form-action 'self'") || strings.Contains(csp, "script-src") {
		t.Errorf("CSP %q: want default-src 'none', form-action 'self' and no scripts", csp)
	}
	for _, hdr := range []string{"X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy", "Cache-Control"} {
		if w.Header().Get(hdr) == "" {
			t.Errorf("no %s header", hdr)
		}
	}
	for _, secret := range []string{"SCRAM-SHA-256$", "PASSWORD '", "VALID UNTIL"} {
		if strings.Contains(strings.ToLower(body), strings.ToLower(secret)) {
			t.Errorf("page mentions %q", secret)
		}
	}
	if !strings.Contains(body, `http-equiv="refresh" content="5; url=/"`) {
		t.Errorf("page does not reload itself every 5 s:\n%s", body[:min(len(body), 600)])
	}
	for _, want := range []string{`href="/sessions/1-abc/terminate?instance=inst-a"`, "Re-check grant", "no_database", "28000", "1 / 10", "45.0 kB", "4242"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// TestHandler_JSONFields: the API's field names are its contract.
func TestHandler_JSONFields(t *testing.T) {
	_, h := newTestHandler(t)
	tests := []struct {
		path, list string
		fields     []string
	}{
		{"/api/sessions", "sessions", []string{"id", "instance", "listener", "login", "machine", "node", "client_addr", "database", "role", "preset", "preset_limited", "max_conns", "started", "bytes_in", "bytes_out", "state", "backend_pid"}},
		{"/api/identities", "identities", []string{"login", "machines", "sessions", "bytes_in", "bytes_out", "listeners"}},
		{"/api/instances", "instances", []string{"id", "hostname", "started", "last_heartbeat", "health", "sessions", "self"}},
		{"/api/refusals", "refusals", []string{"time", "instance", "id", "listener", "login", "machine", "node", "client_addr", "database", "reason", "sqlstate", "message"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			w := do(h, "GET", tt.path, viewerAddr, nil)
			var body map[string][]map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("%s: %v\n%s", tt.path, err, w.Body)
			}
			items := body[tt.list]
			if len(items) != 1 {
				t.Fatalf("%s: %q has %d items, want 1", tt.path, tt.list, len(items))
			}
			for _, f := range tt.fields {
				if _, ok := items[0][f]; !ok {
					t.Errorf("%s: item lacks %q: %v", tt.path, f, items[0])
				}
			}
			if len(items[0]) > len(tt.fields) {
				t.Errorf("%s: item has fields beyond the documented ones: %v", tt.path, items[0])
			}
		})
	}
	var me Me
	json.Unmarshal(do(h, "GET", "/api/me", adminAddr, nil).Body.Bytes(), &me)
	if me != (Me{Name: "ops@example.com", Machine: "ops-laptop", Via: "tailnet", Access: "admin"}) {
		t.Errorf("/api/me = %+v", me)
	}
}

// TestHandler_FilterAndEmptyLists: ?listener= and ?login= filter the
// sessions; an empty list is [] not null.
func TestHandler_FilterAndEmptyLists(t *testing.T) {
	_, h := newTestHandler(t)
	for _, tt := range []struct {
		query string
		want  int
	}{{"", 1}, {"?login=alice@example.com", 1}, {"?login=bob@example.com", 0}, {"?listener=pg-other", 0}, {"?listener=pg-main&login=alice@example.com", 1}} {
		w := do(h, "GET", "/api/sessions"+tt.query, viewerAddr, nil)
		var body struct {
			Sessions []Session `json:"sessions"`
		}
		json.Unmarshal(w.Body.Bytes(), &body)
		if len(body.Sessions) != tt.want || body.Sessions == nil {
			t.Errorf("/api/sessions%s: %d sessions (%s), want %d", tt.query, len(body.Sessions), w.Body, tt.want)
		}
	}
}

// TestToken: the loopback face wants the token, as Bearer or as the Basic
// password, and challenges a browser for it.
func TestToken(t *testing.T) {
	src := &fakeSource{view: testView()}
	h, err := Handler(Options{Source: src, Authorizer: Token{Token: "s3cret-token"}, Hosts: []string{"localhost"}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		auth func(*http.Request)
		want int
	}{
		{"none", func(*http.Request) {}, 401},
		{"wrong bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, 401},
		{"bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer s3cret-token") }, 200},
		{"basic", func(r *http.Request) { r.SetBasicAuth("anyone", "s3cret-token") }, 200},
		{"wrong basic", func(r *http.Request) { r.SetBasicAuth("s3cret-token", "x") }, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/api/me", nil)
			r.Host = "localhost:9188"
			r.RemoteAddr = "127.0.0.1:5555"
			tt.auth(r)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("got %d, want %d: %s", w.Code, tt.want, w.Body)
			}
			if tt.want == 401 && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("401 without a Basic challenge: %v", w.Header())
			}
			if tt.want == 200 && !strings.Contains(w.Body.String(), `"access": "admin"`) || tt.want == 200 && !strings.Contains(w.Body.String(), `"via": "local"`) {
				t.Errorf("local caller: %s", w.Body)
			}
		})
	}
	if Token.Authorize(Token{}, httptest.NewRequest("GET", "/", nil)).Access != "" {
		t.Error("an empty token authorized a request without one")
	}
}
