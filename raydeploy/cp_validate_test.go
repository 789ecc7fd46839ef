package raydeploy

import (
	"strings"
	"testing"

	"github.com/raydeploy/sdk/internal/raydash"
)

func TestValidationResourceChecks(t *testing.T) {
	gpuNode := raydash.Node{Resources: map[string]float64{
		"CPU": 0, "GPU": 1, "tts": 2, "memory": 1e9, "object_store_memory": 1e8,
		"node:10.0.0.3": 1, "accelerator_type:T4": 1,
	}}
	if got, want := describeResources(gpuNode), "0 CPUs, 1 GPUs, tts 2"; got != want {
		t.Errorf("describeResources = %q, want %q", got, want)
	}
	n := Node{Name: "gpu", Resources: Resources{CPUs: new(0), GPUs: new(1), Custom: map[string]float64{"tts": 2}}}
	if err := resourcesAsConfigured(n, gpuNode); err != nil {
		t.Errorf("matching resources: %v", err)
	}
	n.Resources.GPUs, n.Resources.Custom = new(2), map[string]float64{"tts": 2, "nvme": 1}
	err := resourcesAsConfigured(n, gpuNode)
	if err == nil || !strings.Contains(err.Error(), "GPU 1, want 2") || !strings.Contains(err.Error(), "nvme 0, want 1") {
		t.Errorf("mismatch: %v, want GPU and nvme named", err)
	}
	// Unset GPUs and no custom resources: nothing to compare.
	if err := resourcesAsConfigured(Node{Name: "w"}, gpuNode); err != nil {
		t.Errorf("unset resources: %v", err)
	}
}
