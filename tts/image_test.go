package tts

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ory/dockertest/v3/docker"

	"github.com/raydeploy/sdk/internal/testenv"
)

// TestImageRunsTheApp builds the TTS image from the test cluster's Ray image
// on the local Engine (the way the controller does) and runs the app in it
// under the image's Debian python3 with the image's own engines.
func TestImageRunsTheApp(t *testing.T) {
	pool := testenv.RequireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	base, err := testenv.TestRayImage(ctx, pool, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	// A build gets a new ID each time: one build of the tag at a time,
	// across the packages and copies of the suite that run at once.
	unlock, err := testenv.Lock(ctx, "tts-image.lock")
	if err != nil {
		t.Fatal(err)
	}
	tag, err := BuildImage(ctx, base, func(line string) { t.Log(line) })
	unlock()
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	ctr, err := pool.Client.CreateContainer(docker.CreateContainerOptions{
		Context: ctx,
		Config: &docker.Config{
			Image:        tag,
			Cmd:          []string{"python3", "-m", PythonPackage, "--host", "0.0.0.0", "--port", "8000"},
			ExposedPorts: map[docker.Port]struct{}{"8000/tcp": {}},
			Labels: map[string]string{
				testenv.LabelTestenv: "tts-" + strconv.Itoa(os.Getpid()),
				testenv.LabelPID:     strconv.Itoa(os.Getpid()),
				testenv.LabelHost:    host,
			},
		},
		HostConfig: &docker.HostConfig{PortBindings: map[docker.Port][]docker.PortBinding{"8000/tcp": {{HostIP: "127.0.0.1"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = pool.Client.RemoveContainer(docker.RemoveContainerOptions{ID: ctr.ID, Force: true, RemoveVolumes: true})
	})
	if err := pool.Client.StartContainerWithContext(ctr.ID, nil, ctx); err != nil {
		t.Fatal(err)
	}
	info, err := pool.Client.InspectContainerWithContext(ctr.ID, ctx)
	if err != nil {
		t.Fatal(err)
	}
	port := info.NetworkSettings.Ports["8000/tcp"][0].HostPort
	c, err := NewClient(ClientConfig{BaseURL: fmt.Sprintf("http://127.0.0.1:%s", port)})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	h, err := c.WaitHealthy(wctx, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.ModelsLoaded) != 3 {
		t.Errorf("engines in the image: %v, want flite, espeak-ng and festival", h.ModelsLoaded)
	}
	rep, err := Gate(ctx, c, GateOptions{Emotions: []string{"neutral", "excited"}, NeutralVoices: []string{"rms", "espeak-en-us", "festival-slt-hts"}})
	t.Logf("gate in the image:\n%s", rep)
	if err != nil {
		t.Error(err)
	}
}
