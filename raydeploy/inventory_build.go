package raydeploy

import (
	"fmt"
	"slices"
	"strings"
)

func (inv *inventory) build(opts InventoryOptions) *Cluster {
	inv.warnUnsupported()
	gg := inv.groupDepths()
	if len(inv.probs) > 0 {
		// Group membership is unreliable after a parse error: report what
		// was found rather than the knock-on effects.
		return nil
	}
	c := &Cluster{}

	heads := inv.members(opts.HeadGroup)
	hg, ok := inv.groups[opts.HeadGroup]
	switch {
	case !ok:
		inv.errorf(inv.file, 0, "no [%s] group: the head host goes there", opts.HeadGroup)
		return nil
	case len(heads) != 1:
		var list []string
		for _, h := range heads {
			list = append(list, fmt.Sprintf("%s (line %d)", h, inv.hosts[h].line))
		}
		inv.errorf(inv.file, hg.line, "group [%s] must have exactly one host, has %d%s", opts.HeadGroup, len(heads), colonList(list))
		return nil
	}
	workers := inv.members(opts.WorkerGroup)
	if _, ok := inv.groups[opts.WorkerGroup]; !ok {
		inv.warnf(inv.file, 0, "no [%s] group: the cluster has the head only", opts.WorkerGroup)
	}
	for _, w := range workers {
		if w == heads[0] {
			inv.errorf(inv.file, inv.hosts[w].line, "host %s is in both [%s] and [%s]", w, opts.HeadGroup, opts.WorkerGroup)
			return nil
		}
	}
	isWorker := make(map[string]bool, len(workers))
	for _, w := range workers {
		isWorker[w] = true
	}
	for _, h := range inv.hostOrder {
		if h != heads[0] && !isWorker[h] {
			inv.warnf(inv.file, inv.hosts[h].line, "host %s is in neither [%s] nor [%s]; ignored", h, opts.HeadGroup, opts.WorkerGroup)
		}
	}

	headVars := inv.hostVars(heads[0], gg)
	c.Head = inv.node(heads[0], headVars)
	for _, w := range workers {
		wv := inv.hostVars(w, gg)
		c.Workers = append(c.Workers, inv.node(w, wv))
		for _, names := range clusterVars {
			_, hv, hok := lookup(headVars, names)
			wn, wvv, wok := lookup(wv, names)
			if wok && (!hok || hv.value != wvv.value) && !wvv.nonScalar {
				inv.warnf(wvv.file, wvv.line, "host %s: %s differs from the head's; cluster-wide settings are taken from the head", w, wn)
			}
		}
	}
	inv.clusterSettings(c, headVars)

	switch {
	case opts.ClusterName != "":
		c.Name = opts.ClusterName
	case c.Name != "":
	default:
		c.Name = inv.guessName(opts)
	}
	return c
}

func colonList(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return ": " + strings.Join(l, ", ")
}

// guessName names the cluster after a group holding both the head and
// worker groups (like the seed's ray_cluster), else "ray".
func (inv *inventory) guessName(opts InventoryOptions) string {
	for _, name := range sortedKeys(inv.groups) {
		if name == "all" {
			continue
		}
		var kids []string
		for _, c := range inv.groups[name].children {
			kids = append(kids, c.name)
		}
		if slices.Contains(kids, opts.HeadGroup) && slices.Contains(kids, opts.WorkerGroup) {
			n := strings.Trim(strings.Map(func(r rune) rune {
				switch {
				case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
					return r
				case r >= 'A' && r <= 'Z':
					return r + 'a' - 'A'
				}
				return '-'
			}, name), "-")
			if len(n) <= MaxClusterNameLen && clusterNameRE.MatchString(n) {
				return n
			}
		}
	}
	return "ray"
}

func (inv *inventory) node(name string, vars map[string]invVar) Node {
	h := inv.hosts[name]
	n := Node{Name: name, Address: name, Port: h.port}
	if s, _, _, ok := inv.scalar(name, vars, varAddress); ok {
		n.Address = s
	}
	if p, ok := inv.intVar(name, vars, varPort, 1, 65535, "a port number"); ok {
		n.Port = p
	}
	if s, _, _, ok := inv.scalar(name, vars, varUser); ok {
		n.User = s
	}
	if s, _, _, ok := inv.scalar(name, vars, varKeyFile); ok {
		n.Auth.KeyFile = s
	}
	if s, v, vn, ok := inv.scalar(name, vars, varPassword); ok && s != "" {
		n.Auth.Password = NewSecret(s)
		inv.warnf(v.file, v.line, "host %s: %s is a plaintext SSH password; raydeploy keeps it in memory only and never logs or saves it; prefer a key (ansible_ssh_private_key_file) or ssh.password_env", name, vn)
	}
	if s, v, vn, ok := inv.scalar(name, vars, varSudoPassword); ok && s != "" {
		n.Auth.SudoPassword = NewSecret(s)
		inv.warnf(v.file, v.line, "host %s: %s is a plaintext sudo password; raydeploy keeps it in memory only and never logs or saves it; prefer ssh.sudo_password_env or passwordless sudo", name, vn)
	}
	if i, ok := inv.intVar(name, vars, varCPUs, 0, 1<<20, "a CPU count"); ok {
		n.Resources.CPUs = new(i)
	}
	if i, ok := inv.intVar(name, vars, varGPUs, 0, 1<<16, "a GPU count"); ok {
		n.Resources.GPUs = new(i)
	}
	if s, v, vn, ok := inv.scalar(name, vars, varMemory); ok {
		b, err := ParseByteSize(s)
		if err != nil {
			inv.errorf(v.file, v.line, "host %s: %s: %v", name, vn, err)
		}
		n.Resources.Memory = b
	}
	n.Resources.CPUFraction = inv.fractionVar(name, vars, varCPUFraction)
	n.Resources.MemoryFraction = inv.fractionVar(name, vars, varMemFraction)
	// Of an exclusive pair set at different levels, the more specific wins.
	if n.Resources.CPUs != nil && n.Resources.CPUFraction != 0 {
		if rankOf(vars, varCPUs) >= rankOf(vars, varCPUFraction) {
			n.Resources.CPUFraction = 0
		} else {
			n.Resources.CPUs = nil
		}
	}
	if n.Resources.Memory != 0 && n.Resources.MemoryFraction != 0 {
		if rankOf(vars, varMemory) >= rankOf(vars, varMemFraction) {
			n.Resources.MemoryFraction = 0
		} else {
			n.Resources.Memory = 0
		}
	}
	if c, _, cn, ok := inv.scalar(name, vars, []string{"ansible_connection"}); ok && c != "ssh" && c != "smart" && c != "paramiko" {
		v := vars[cn]
		inv.errorf(v.file, v.line, "host %s: ansible_connection=%s: raydeploy reaches nodes over SSH only", name, c)
	}
	return n
}

func (inv *inventory) clusterSettings(c *Cluster, vars map[string]invVar) {
	if s, _, _, ok := inv.scalar("", vars, varClusterName); ok {
		c.Name = s
	}
	if s, _, _, ok := inv.scalar("", vars, varVersion); ok {
		c.Ray.Version = s
	}
	if s, _, _, ok := inv.scalar("", vars, varImage); ok {
		c.Ray.Image = s
	}
	ports := []struct {
		names []string
		dst   *int
	}{
		{varGCSPort, &c.Ray.Ports.GCS}, {varDashboardPort, &c.Ray.Ports.Dashboard},
		{varClientPort, &c.Ray.Ports.Client}, {varMetricsPort, &c.Ray.Ports.Metrics},
		{varMinWorkerPort, &c.Ray.Ports.MinWorkerPort}, {varMaxWorkerPort, &c.Ray.Ports.MaxWorkerPort},
		{varAgentPort, &c.Ray.Ports.DashboardAgent}, {varServePort, &c.Ray.Ports.ServeHTTP},
	}
	for _, p := range ports {
		if v, ok := inv.intVar("", vars, p.names, 1, 65535, "a port number"); ok {
			*p.dst = v
		}
	}
	if s, v, vn, ok := inv.scalar("", vars, varShmSize); ok {
		b, err := ParseByteSize(s)
		if err != nil {
			inv.errorf(v.file, v.line, "%s: %v", vn, err)
		}
		c.Ray.ShmSize = b
	}
}
