package raydeploy

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"strconv"

	"github.com/raydeploy/sdk/service"
)

// ServiceSpec is a containerized service the SDK runs on a set of nodes; the
// Ray head and workers are ServiceSpecs too. See package service.
type ServiceSpec = service.Spec

// Service names of Ray's containers (the container is "<cluster>-<name>").
const (
	ServiceRayHead   = "ray-head"
	ServiceRayWorker = "ray-worker"
)

// rayTempDir is Ray's temp dir, bind-mounted from the node so that session
// logs survive a container replacement and Prometheus can read Ray's file
// service discovery on the head.
const rayTempDir = "/tmp/ray"

// expectedCPUs is the CPU count Ray is started with on the node: the node's
// Resources.CPUs, else CPUFraction of its CPUs (at least 1), else all of them.
func expectedCPUs(n Node, f Facts) int {
	switch {
	case n.Resources.CPUs != nil:
		return *n.Resources.CPUs
	case n.Resources.CPUFraction > 0:
		return max(1, int(math.Floor(float64(f.CPUs)*n.Resources.CPUFraction)))
	}
	return f.CPUs
}

// rayMemory is Ray's --memory for the node, 0 when unset.
func rayMemory(n Node, f Facts) ByteSize {
	switch {
	case n.Resources.Memory > 0:
		return n.Resources.Memory
	case n.Resources.MemoryFraction > 0:
		return ByteSize(float64(f.MemTotal) * n.Resources.MemoryFraction)
	}
	return 0
}

// shmSize is the container's /dev/shm: the configured size, else Ray's
// launcher rule applied to the node's total memory (total, not available, so
// that the container spec, and with it a no-op re-run, is stable).
func (c *Cluster) shmSize(f Facts) int64 {
	if c.Ray.ShmSize > 0 {
		return int64(c.Ray.ShmSize)
	}
	return int64(AutoShmSize(f.MemTotal))
}

// rayToken is the Ray auth token from the deploying process's environment.
func (c *Cluster) rayToken() (string, error) {
	if !c.Ray.TokenAuth.Enabled {
		return "", nil
	}
	name := c.Ray.TokenAuth.TokenEnv
	if name == "" {
		name = "RAY_AUTH_TOKEN"
	}
	tok := os.Getenv(name)
	if tok == "" {
		return "", fmt.Errorf("ray.token_auth: enabled, but environment variable %s is empty", name)
	}
	return tok, nil
}

// RayService returns the Ray service spec for the node: the head
// node gets "ray-head", every other node "ray-worker". f are the node's facts
// (CPUs and memory for the resource flags).
func (c *Cluster) RayService(n Node, f Facts) (ServiceSpec, error) {
	p := c.Ray.Ports
	args := []string{"ray", "start"}
	name := ServiceRayWorker
	placement := service.Placement{Nodes: []string{n.ID()}}
	if n.Role == RoleHead {
		name = ServiceRayHead
		args = append(args,
			"--head",
			"--port="+strconv.Itoa(p.GCS),
			"--dashboard-host=0.0.0.0",
			"--dashboard-port="+strconv.Itoa(p.Dashboard),
			"--ray-client-server-port="+strconv.Itoa(p.Client),
		)
	} else {
		args = append(args, "--address="+c.Head.Address+":"+strconv.Itoa(p.GCS))
	}
	args = append(args,
		"--node-ip-address="+n.Address,
		"--metrics-export-port="+strconv.Itoa(p.Metrics),
		"--dashboard-agent-listen-port="+strconv.Itoa(p.DashboardAgent),
		"--min-worker-port="+strconv.Itoa(p.MinWorkerPort),
		"--max-worker-port="+strconv.Itoa(p.MaxWorkerPort),
		"--num-cpus="+strconv.Itoa(expectedCPUs(n, f)),
	)
	if n.Resources.GPUs != nil {
		args = append(args, "--num-gpus="+strconv.Itoa(*n.Resources.GPUs))
	}
	if m := rayMemory(n, f); m > 0 {
		args = append(args, "--memory="+strconv.FormatInt(int64(m), 10))
	}
	if len(n.Resources.Custom) > 0 {
		b, _ := json.Marshal(n.Resources.Custom) // map[string]float64 always marshals
		args = append(args, "--resources="+string(b))
	}
	if len(n.Labels) > 0 {
		b, _ := json.Marshal(n.Labels)
		args = append(args, "--labels="+string(b))
	}
	args = append(args, "--disable-usage-stats")
	args = append(args, c.Ray.ExtraStartArgs...)
	args = append(args, "--block")

	env := maps.Clone(c.Ray.Env)
	if env == nil {
		env = map[string]string{}
	}
	tok, err := c.rayToken()
	if err != nil {
		return ServiceSpec{}, err
	}
	if tok != "" {
		env["RAY_AUTH_MODE"] = "token"
		env["RAY_AUTH_TOKEN"] = tok
	}
	return ServiceSpec{
		Name:        name,
		Image:       c.Ray.Image,
		Placement:   placement,
		Command:     args,
		Env:         env,
		NetworkMode: "host",
		Restart:     "unless-stopped",
		ShmSize:     c.shmSize(f),
		GPUs:        n.Resources.GPUs != nil && *n.Resources.GPUs > 0,
		Mounts:      []service.Mount{{Type: "bind", Source: rayTempDir, Target: rayTempDir}},
		Ulimits:     c.rayUlimits(),
	}, nil
}

func (c *Cluster) rayUlimits() []service.Ulimit {
	n := int64(c.Ray.NoFile)
	switch {
	case n < 0:
		return nil
	case n == 0:
		n = 65536
	}
	return []service.Ulimit{{Name: "nofile", Soft: n, Hard: n}}
}

// rayContainerNames are the container names of Ray on any node of the cluster.
func (c *Cluster) rayContainerNames() []string {
	return []string{c.Name + "-" + ServiceRayHead, c.Name + "-" + ServiceRayWorker}
}
