package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/waypoint-proxy/waypoint/internal/coord/redistest"
	"github.com/waypoint-proxy/waypoint/internal/tailnet"
	"github.com/waypoint-proxy/waypoint/internal/testkit"
)

// screenshotEnv, when set, names the file the browser test writes its
// screenshot of the console to (PNG); docs/console.png is made this way.
const screenshotEnv = "WAYPOINT_CONSOLE_SCREENSHOT"

// chromium returns the path of an installed Chromium or Chrome. Without
// one the test is skipped locally and fails under CI=true, so that CI
// never silently skips the browser test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium found: CI must run the browser test (scripts/install-postgres.sh installs Debian's chromium)")
	}
	t.Skip("no chromium installed (apt-get install chromium, or run scripts/install-postgres.sh)")
	return ""
}

// browser starts a headless Chromium for the test. It returns the tab and
// a function that waits until the browser is up: the start runs while the
// caller builds the rest of the test.
func browser(t *testing.T) (tab context.Context, ready func()) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)), chromedp.WindowSize(1600, 1000))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses its sandbox as root
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancelTab)
	start := time.Now()
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(tab) }() // starts the browser
	return tab, func() {
		t.Helper()
		if err := <-started; err != nil {
			t.Fatalf("start chromium: %v", err)
		}
		t.Logf("chromium up %v after the test began", time.Since(start).Round(time.Millisecond))
	}
}

// within bounds one browser step.
func within(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}

// TestConsole_Browser drives the page in a real headless Chromium: it
// loads through the tailnet as an admin and lists a live session — one
// served by the other of two instances sharing Redis —, picks up a new
// session by reloading itself, and terminating goes through a
// confirmation page: nothing happens before confirming; after confirming
// the client gets 57P01 and the list says so.
func TestConsole_Browser(t *testing.T) {
	tab, browserReady := browser(t)
	r := newConsoleRig(t, 2, redistest.Start(t).Addr())
	in, other := r.apps[0], r.apps[1]
	ops := r.client("ops@example.com", "ops-laptop", adminGrant)
	alice := r.client("alice@example.com", "macbook", `{"limits":{"max_conns":5},`+strings.TrimPrefix(readonlyGrant, "{"))
	ci := r.tn.NewClient(t, "", "ci-runner", "tag:ci")
	r.tn.SetGrant(ci, tailnet.DefaultCapability, json.RawMessage(readonlyGrant))
	mallory := r.client("mallory@example.com", "evil", `{"backends":{"pg-other":{"pg":{"databases":{"*":{"permissions":["readonly"]}}}}}}`)
	bob := r.client("bob@example.com", "workstation", `{"backends":{"pg-main":{"pg":{"databases":{"appdb":{"permissions":["readwrite"]}}}}}}`)
	r.waitSeen(ci, readonlyGrant)

	conn := r.connect(alice, other) // served by the other instance
	ctx := context.Background()
	if _, err := conn.Exec(ctx, "select count(*) from public.items"); err != nil {
		t.Fatal(err)
	}
	url := r.consoleVia(ops, in)
	id := sessionOf(t, url, "alice@example.com")
	r.connect(alice, in)
	r.connect(ci, other)
	if _, err := r.tryConnect(mallory, in); err == nil {
		t.Fatal("mallory connected without a grant for pg-main")
	}
	row := `tr[data-session="` + id + `"]`

	browserReady()
	step, cancel := within(tab, 30*time.Second)
	start := time.Now()
	if err := chromedp.Do(step, chromedp.Navigate(url+"/"), chromedp.WaitVisible(chromedp.CSS(row))); err != nil {
		t.Fatalf("load the console: %v", err)
	}
	cancel()
	t.Logf("page loaded and listed alice's session in %v", time.Since(start).Round(time.Millisecond))
	text, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS(row)))
	if err != nil || !strings.Contains(text, "alice@example.com") || !strings.Contains(text, "wp_alice_macbook_appdb") || !strings.Contains(text, "relaying") ||
		!strings.Contains(text, other.hostname) {
		t.Errorf("alice's row reads %q, %v", text, err)
	}

	// The page reloads itself: a session opened now appears without any
	// navigation by the test.
	r.connect(bob, in)
	bobID := sessionOf(t, url, "bob@example.com")
	step, cancel = within(tab, 20*time.Second)
	start = time.Now()
	if err := chromedp.Do(step, chromedp.WaitVisible(chromedp.CSS(`tr[data-session="`+bobID+`"]`))); err != nil {
		t.Fatalf("the page did not pick up bob's new session by itself: %v", err)
	}
	cancel()
	t.Logf("bob's new session appeared after %v (the page reloads every 5 s)", time.Since(start).Round(time.Millisecond))
	screenshot(t, tab)

	// Terminate… leads to a confirmation; nothing is done yet.
	step, cancel = within(tab, 20*time.Second)
	if err := chromedp.Do(step, chromedp.Click(chromedp.CSS(row+" a.button.danger")), chromedp.WaitVisible(chromedp.ID("confirm"))); err != nil {
		t.Fatalf("open the confirmation: %v", err)
	}
	cancel()
	heading, _ := chromedp.Run(tab, chromedp.Text(chromedp.CSS(".confirm h2")))
	if heading != "Terminate session "+id+"?" {
		t.Errorf("confirmation heading %q", heading)
	}
	if _, err := conn.Exec(ctx, "select 1"); err != nil {
		t.Fatalf("alice's session ended before the operator confirmed: %v", err)
	}

	step, cancel = within(tab, 20*time.Second)
	if err := chromedp.Do(step, chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.CSS(".notice"))); err != nil {
		t.Fatalf("confirm: %v", err)
	}
	cancel()
	notice, _ := chromedp.Run(tab, chromedp.Text(chromedp.CSS(".notice")))
	if notice != "Session "+id+" was terminated." {
		t.Errorf("notice after confirming: %q", notice)
	}
	if _, err := conn.Exec(ctx, "select 1"); !fatal57P01(err) {
		t.Errorf("alice after the operator confirmed: got %v, want FATAL 57P01 saying an operator terminated the session", err)
	}
	step, cancel = within(tab, 20*time.Second)
	if err := chromedp.Do(step, chromedp.WaitNotPresent(chromedp.CSS(row))); err != nil {
		t.Errorf("the terminated session stayed on the page: %v", err)
	}
	cancel()
	testkit.WaitFor(t, 20*time.Second, "the other instance's audit log to record the termination", func() bool {
		return strings.Contains(readFile(other.auditLog), `"action":"terminate"`)
	})
}

// screenshot writes a PNG of the whole page to $WAYPOINT_CONSOLE_SCREENSHOT
// when set (the image in docs/console.md), else to the test's temporary directory.
func screenshot(t *testing.T, tab context.Context) {
	t.Helper()
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := os.Getenv(screenshotEnv)
	if path == "" {
		path = filepath.Join(t.TempDir(), "console.png")
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}
