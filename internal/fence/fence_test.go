package fence_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/raydeploy/sdk/internal/dockerx"
	"github.com/raydeploy/sdk/internal/fence"
	"github.com/raydeploy/sdk/internal/sshx"
)

// TestMutationsStopAtAFailedFence: every SSH command, upload and Docker
// mutation checks the fence first and changes nothing when it fails (the
// zero Conn and Engine would crash if they got further).
func TestMutationsStopAtAFailedFence(t *testing.T) {
	lost := errors.New("lock lost")
	ctx := fence.With(context.Background(), func() error { return lost })
	var c sshx.Conn
	var e dockerx.Engine
	calls := map[string]func() error{
		"ssh run":        func() error { _, err := c.Run(ctx, "true"); return err },
		"ssh sudo":       func() error { _, err := c.Sudo(ctx, "true"); return err },
		"ssh upload":     func() error { return c.Upload(ctx, strings.NewReader("x"), "/tmp/x", 0o600, "") },
		"docker ensure":  func() error { _, err := e.Ensure(ctx, dockerx.ContainerSpec{Name: "n", Image: "i"}); return err },
		"docker remove":  func() error { return e.Remove(ctx, "id") },
		"docker exec":    func() error { _, err := e.Exec(ctx, "id", []string{"true"}); return err },
		"docker pull":    func() error { return e.Pull(ctx, "img", nil) },
		"docker load":    func() error { return e.Load(ctx, strings.NewReader("")) },
		"docker runonce": func() error { _, _, err := e.RunOnce(ctx, "c", "img", []string{"true"}); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, lost) {
			t.Errorf("%s: %v, want the fence's error", name, err)
		}
	}
	if err := fence.Check(context.Background()); err != nil {
		t.Errorf("no fence: %v", err)
	}
	second := errors.New("second")
	both := fence.With(fence.With(context.Background(), func() error { return nil }), func() error { return second })
	if err := fence.Check(both); !errors.Is(err, second) {
		t.Errorf("nested fences: %v", err)
	}
}
