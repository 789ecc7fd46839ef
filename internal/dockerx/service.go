package dockerx

import (
	"maps"

	"github.com/raydeploy/sdk/service"
)

// FromService returns the container spec of service s on one node of the
// cluster, with the ownership labels (cluster, role = service name) set.
func FromService(s service.Spec, cluster string) ContainerSpec {
	labels := maps.Clone(s.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelCluster] = cluster
	labels[LabelRole] = s.Name
	network := s.NetworkMode
	if network == "" {
		network = "host"
	}
	restart := s.Restart
	if restart == "" {
		restart = "unless-stopped"
	}
	c := ContainerSpec{
		Name:        s.ContainerName(cluster),
		Image:       s.Image,
		Entrypoint:  s.Entrypoint,
		Cmd:         s.Command,
		Env:         s.Env,
		Labels:      labels,
		NetworkMode: network,
		Privileged:  s.Privileged,
		CapAdd:      s.CapAdd,
		PIDMode:     s.PIDMode,
		User:        s.User,
		Restart:     restart,
		ShmSize:     s.ShmSize,
		GPUs:        s.GPUs,
	}
	for _, p := range s.Ports {
		c.Ports = append(c.Ports, Port{Container: p.Container, Host: p.Host, Protocol: p.Protocol})
	}
	for _, m := range s.Mounts {
		c.Mounts = append(c.Mounts, Mount{Type: m.Type, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	for _, u := range s.Ulimits {
		c.Ulimits = append(c.Ulimits, Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	return c
}
