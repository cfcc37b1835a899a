package console

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestClient: the client speaks the API the handler serves, with the
// token, and reports the console's refusals with their message.
func TestClient(t *testing.T) {
	src := &fakeSource{view: testView(), result: Result{Action: "terminate", Sessions: testView().Sessions}}
	h, err := Handler(Options{Source: src, Authorizer: Token{Token: "tok"}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx := context.Background()
	c := &Client{BaseURL: srv.URL + "/", Token: "tok"}

	ss, unreachable, err := c.Sessions(ctx, Filter{Login: "alice@example.com"})
	if err != nil || len(ss) != 1 || ss[0].Role != "wp_alice_laptop_appdb" || len(unreachable) != 0 {
		t.Fatalf("Sessions = %+v, %v, %v", ss, unreachable, err)
	}
	if res, err := c.Terminate(ctx, "1-abc", "inst-a"); err != nil || len(res.Sessions) != 1 {
		t.Errorf("Terminate = %+v, %v", res, err)
	}
	if _, err := c.TerminateLogin(ctx, "tag:ci,tag:db"); err != nil {
		t.Errorf("TerminateLogin: %v", err)
	}
	if _, err := c.Revalidate(ctx, "alice@example.com"); err != nil {
		t.Errorf("Revalidate: %v", err)
	}
	want := "terminate 1-abc @inst-a by local via local|terminate_identity tag:ci,tag:db by local|revalidate alice@example.com by local"
	if got := strings.Join(src.recorded(), "|"); got != want {
		t.Errorf("actions = %q, want %q", got, want)
	}

	src.actErr = ErrNotFound
	if _, err := c.Terminate(ctx, "9-zzz", ""); !IsNotFound(err) || !strings.Contains(err.Error(), "no open session 9-zzz") {
		t.Errorf("Terminate(unknown) = %v, want a 404 naming the id", err)
	}
	bad := &Client{BaseURL: srv.URL, Token: "wrong"}
	if _, _, err := bad.Sessions(ctx, Filter{}); err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "token") {
		t.Errorf("Sessions with a wrong token = %v, want 401 explaining the token", err)
	}
}
