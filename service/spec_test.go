package service

import (
	"strings"
	"testing"
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

func TestPlacementMatches(t *testing.T) {
	if !OnWorkers.Matches("w1", "worker") || OnWorkers.Matches("h", "head") || !(Placement{Nodes: []string{"w1"}}).Matches("w1", "worker") {
		t.Error("placement matching is wrong")
	}
}
