package dockerx

import (
	"testing"

	"github.com/raydeploy/sdk/service"
)

func TestContainerCarriesOwnershipAndDefaults(t *testing.T) {
	s := service.Spec{Name: "ray-head", Image: "rayproject/ray:2.58.0", Placement: service.OnHead, Labels: map[string]string{"x": "y"}}
	c := FromService(s, "prod")
	if c.Name != "prod-ray-head" || c.NetworkMode != "host" || c.Restart != "unless-stopped" {
		t.Errorf("container = %+v", c)
	}
	if c.Labels[LabelCluster] != "prod" || c.Labels[LabelRole] != "ray-head" || c.Labels["x"] != "y" {
		t.Errorf("labels = %v", c.Labels)
	}
	if _, ok := s.Labels[LabelCluster]; ok {
		t.Error("FromService modified the spec's own labels")
	}
}
