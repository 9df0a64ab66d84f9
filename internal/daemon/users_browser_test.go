package daemon_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const installChromium = "install the Debian package chromium: run `make test` as root (target deps-apt), " +
	"or `apt-get install --no-install-recommends chromium`"

// browser starts a headless Debian chromium driven by chromedp, failing
// the test with the advice when chromium is missing.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed; %s", installChromium)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	bctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(bctx, 90*time.Second)
	t.Cleanup(cancel3)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// TestUsersConfirmationPageInBrowser opens the mailed link in a real
// headless browser: the page says what is confirmed and opening it
// confirms nothing; pressing its button confirms, and the browser shows
// so. A used link then shows the 410 page.
func TestUsersConfirmationPageInBrowser(t *testing.T) {
	f := newUsersFixture(t, nil)
	ctx := browser(t)
	_, rec, _ := f.signup(t, "Grace Hopper", "grace@example.org")
	link := f.mail(t).link(t)

	if err := chromedp.Do(ctx, chromedp.Navigate(link)); err != nil {
		t.Fatal(err)
	}
	title, message := pageText(t, ctx)
	if title != "Confirm your account" || !strings.Contains(message, "grace@example.org") || !strings.Contains(message, "Grace Hopper") {
		t.Fatalf("page: %q %q", title, message)
	}
	// Opening the page (and reloading it) confirmed nothing.
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#confirm"))); err != nil {
		t.Fatal(err)
	}
	if st := f.status(t, rec.ID, ""); st.State != "pending" {
		t.Fatalf("the GET confirmed: %+v", st)
	}

	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#confirm"))); err != nil {
		t.Fatal(err)
	}
	// The form's POST navigates: read the page until the new one is there
	// (reads during the navigation fail and are tried again).
	deadline := time.Now().Add(20 * time.Second)
	for {
		var err error
		title, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#title")))
		if err == nil && title == "Account confirmed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the button: %q %v", title, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, message = pageText(t, ctx)
	if !strings.Contains(message, "grace@example.org is created") {
		t.Fatalf("confirmation page: %q", message)
	}
	if st := f.status(t, rec.ID, ""); st.State != "confirmed" || st.UserID == "" {
		t.Fatalf("after the button: %+v", st)
	}
	// The used link, opened again.
	if err := chromedp.Do(ctx, chromedp.Navigate(link)); err != nil {
		t.Fatal(err)
	}
	if title, _ = pageText(t, ctx); title != "This link can no longer be used" {
		t.Fatalf("used link: %q", title)
	}
}

// pageText reads the page's title and message elements.
func pageText(t *testing.T, ctx context.Context) (title, message string) {
	t.Helper()
	title, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#title")))
	if err != nil {
		t.Fatal(err)
	}
	if message, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#message"))); err != nil {
		t.Fatal(err)
	}
	return title, message
}
