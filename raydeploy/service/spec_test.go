package service

import (
	"strings"
	"testing"

	"github.com/raydeploy/sdk/internal/dockerx"
)

func TestValidateNamesTheField(t *testing.T) {
	ok := Spec{Name: "node-exporter", Image: "prom/node-exporter:v1", Placement: OnAll}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid spec: %v", err)
	}
	cases := []struct {
		mutate func(*Spec)
		want   string
	}{
		{func(s *Spec) { s.Name = "Bad_Name" }, "name:"},
		{func(s *Spec) { s.Image = "" }, "image: must not be empty"},
		{func(s *Spec) { s.Placement = Placement{} }, "placement: needs a role"},
		{func(s *Spec) { s.Placement = Placement{Role: "everyone"} }, `placement.role: "everyone"`},
		{func(s *Spec) { s.Ports = []Port{{Container: 80, Host: 80}} }, "ports: published ports need network_mode bridge"},
		{func(s *Spec) { s.NetworkMode = "bridge"; s.Ports = []Port{{Container: 0, Host: 80}} }, "ports[0]: ports must be in 1-65535"},
		{func(s *Spec) { s.Mounts = []Mount{{Type: "nfs", Target: "/x"}} }, `mounts[0].type: "nfs"`},
		{func(s *Spec) { s.Mounts = []Mount{{Type: "bind", Source: "rel", Target: "/x"}} }, "mounts[0].source"},
		{func(s *Spec) { s.Health = &HealthCheck{HTTP: "http://x", TCP: "x:1"} }, "health: set exactly one"},
	}
	for _, c := range cases {
		s := ok
		c.mutate(&s)
		err := s.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want it to contain %q", err, c.want)
		}
	}
}

func TestContainerCarriesOwnershipAndDefaults(t *testing.T) {
	s := Spec{Name: "ray-head", Image: "rayproject/ray:2.58.0", Placement: OnHead, Labels: map[string]string{"x": "y"}}
	c := s.Container("prod")
	if c.Name != "prod-ray-head" || c.NetworkMode != "host" || c.Restart != "unless-stopped" {
		t.Errorf("container = %+v", c)
	}
	if c.Labels[dockerx.LabelCluster] != "prod" || c.Labels[dockerx.LabelRole] != "ray-head" || c.Labels["x"] != "y" {
		t.Errorf("labels = %v", c.Labels)
	}
	if _, ok := s.Labels[dockerx.LabelCluster]; ok {
		t.Error("Container modified the spec's own labels")
	}
	if !OnWorkers.Matches("w1", "worker") || OnWorkers.Matches("h", "head") || !(Placement{Nodes: []string{"w1"}}).Matches("w1", "worker") {
		t.Error("placement matching is wrong")
	}
}
