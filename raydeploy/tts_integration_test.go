package raydeploy_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/raydeploy/sdk/checkpoint"
	"github.com/raydeploy/sdk/internal/testenv"
	"github.com/raydeploy/sdk/raydeploy"
	"github.com/raydeploy/sdk/tts"
)

// TestTTSOnCluster deploys a one-node cluster whose Ray image is the TTS
// image (built on the controller from the test Ray image, side-loaded by
// ray-deployment), then the TTS application through the Deployer, checks it
// speaks (the functional gate, through the head's SSH connection) and removes it.
func TestTTSOnCluster(t *testing.T) {
	tb := newTestbed(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	// A build gets a new ID each time: one build of the tag at a time,
	// across the packages and copies of the suite that run at once.
	unlock, err := testenv.Lock(ctx, "tts-image.lock")
	if err != nil {
		t.Fatal(err)
	}
	tag, err := tts.BuildImage(ctx, tb.image, nil)
	unlock()
	if err != nil {
		t.Fatal(err)
	}
	tb.cluster.Ray.Image = tag
	d := tb.deployer(t, raydeploy.Options{NoMonitoring: true})
	if _, err := d.Deploy(ctx, checkpoint.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := tts.Service{Autoscaling: tts.Autoscaling{MinReplicas: 1, MaxReplicas: 2}}
	p, err := d.PlanTTS(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	if p.Action != tts.ActionCreate {
		t.Fatalf("plan = %s", p)
	}
	if err := d.DeployTTS(ctx, svc, p); err != nil {
		t.Fatal(err)
	}
	rep, err := d.ValidateTTS(ctx, svc, tts.GateOptions{Emotions: []string{"neutral", "happy"}, NeutralVoices: []string{"espeak-en-us"}})
	t.Logf("gate on the cluster:\n%s", rep)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := d.PlanTTS(ctx, svc); err != nil || !p.Empty() {
		t.Errorf("re-plan: %s, %v; want none", p, err)
	}
	if err := d.RemoveTTS(ctx, svc); err != nil {
		t.Fatal(err)
	}
	c, err := d.TTSClient(svc)
	if err != nil {
		t.Fatal(err)
	}
	var ae *tts.APIError
	if _, err := c.Health(ctx); !errors.As(err, &ae) || ae.Status != 404 {
		t.Errorf("after RemoveTTS: health = %v, want Serve's 404", err)
	}
}
