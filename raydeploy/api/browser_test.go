package api_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/raydeploy/sdk/raydeploy/api"
)

// screenshotDir is where the browser test writes its screenshots:
// $RAYDEPLOY_SCREENSHOT_DIR, else a fresh directory the test log names
// (kept after the test so that a person can look at them).
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("RAYDEPLOY_SCREENSHOT_DIR")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "raydeploy-ui-screenshots-"); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Fatal("Debian's chromium is needed (scripts/setup --tests installs it)")
	return ""
}

// browserApprovesCleanup opens the UI with an approver token, sees the
// pending cleanup-existing with its plan, approves it with the keyboard and
// watches the run finish.
func browserApprovesCleanup(t *testing.T, ce *clusterEnv, exe string) {
	id, req := ce.startCleanup(t)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-dev-shm-usage", true))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancel()
	dir := screenshotDir(t)
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			buf, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			path := filepath.Join(dir, name)
			t.Logf("screenshot: %s", path)
			return os.WriteFile(path, buf, 0o644)
		})
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	card := `article[data-request="` + req.ID + `"]`
	if err := chromedp.Do(ctx,
		chromedp.Navigate(ce.ts.URL+"/"),
		chromedp.WaitVisible(css(`#token`)),
		chromedp.SendKeys(css(`#token`), ce.tokens["approver"]),
		chromedp.SendKeys(css(`#token`), kb.Enter),
		chromedp.WaitVisible(css(card+` table.plan`)),
		shot("1-pending-approval-1280x800.png"),
	); err != nil {
		t.Fatal(err)
	}
	planText, err := chromedp.Run(ctx, chromedp.Text(css(card+` table.plan`)))
	if err != nil {
		t.Fatal(err)
	}
	digest, err := chromedp.Run(ctx, chromedp.Text(css(card+` .digest`)))
	if err != nil {
		t.Fatal(err)
	}
	stored, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify([sessionStorage.getItem("raydeploy.token") !== null, localStorage.length, document.cookie])`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(planText, "ray_head") || !strings.Contains(planText, "ray_worker") || digest != req.PlanDigest {
		t.Fatalf("the UI shows plan %q digest %q; want the seed containers and %s", planText, digest, req.PlanDigest)
	}
	if stored != `[true,0,""]` {
		t.Fatalf("token storage [sessionStorage, localStorage items, cookies] = %s", stored)
	}
	// Keyboard only: acknowledge the risks (Space), then Enter on Approve.
	if err := chromedp.Do(ctx,
		chromedp.Focus(css(card+` input[type=checkbox]`)),
		chromedp.KeyEvent(" "),
		chromedp.Focus(css(card+` button.approve`)),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(css(`tr[data-execution="`+id+`"] span.COMPLETED`)),
		chromedp.WaitVisible(css(`tr[data-checkpoint="cleanup-existing"] span.succeeded`)),
		shot("2-run-finished-1280x800.png"),
		chromedp.EmulateViewport(390, 844),
		chromedp.Reload(),
		chromedp.WaitVisible(css(`tr[data-checkpoint="cleanup-existing"] span.succeeded`)),
		shot("3-phone-390.png"),
	); err != nil {
		t.Fatal(err)
	}
	if x := ce.execution(id); x.Status != api.ExecCompleted {
		t.Fatalf("execution: %+v", x)
	}
	var au api.AuditAnswer
	ce.call("viewer", "GET", "/api/v1/audit?limit=1000", nil, &au)
	found := false
	for _, r := range au.Records {
		found = found || r.Kind == "decision" && r.Decision != nil && r.Decision.Approved && r.Decision.By == "approver" && r.Decision.PlanDigest == req.PlanDigest
	}
	if !found {
		t.Fatal("the browser's approval is not in the audit log")
	}
}
