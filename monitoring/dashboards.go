package monitoring

import (
	"fmt"
	"strings"
)

// Dashboard uids (stable: links and bookmarks survive redeployments).
const (
	DashboardNodesUID      = "raydeploy-nodes"
	DashboardContainersUID = "raydeploy-containers"
	DashboardRayUID        = "raydeploy-ray-cluster"
)

// The JSON model of a Grafana dashboard (the parts we use), schemaVersion 39.
type dashboard struct {
	file string // file name under GrafanaDashboardDir

	UID           string      `json:"uid"`
	Title         string      `json:"title"`
	Description   string      `json:"description,omitempty"`
	Tags          []string    `json:"tags"`
	Timezone      string      `json:"timezone"`
	SchemaVersion int         `json:"schemaVersion"`
	Version       int         `json:"version"`
	Editable      bool        `json:"editable"`
	GraphTooltip  int         `json:"graphTooltip"`
	Refresh       string      `json:"refresh"`
	Time          timeRange   `json:"time"`
	Templating    templating  `json:"templating"`
	Annotations   annotations `json:"annotations"`
	Panels        []panel     `json:"panels"`
}

type timeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

type templating struct {
	List []variable `json:"list"`
}

type annotations struct {
	List []any `json:"list"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// promDS is the reference every query panel uses: the dashboard's variable.
var promDS = &datasourceRef{Type: "prometheus", UID: "${datasource}"}

type variable struct {
	Name       string         `json:"name"`
	Label      string         `json:"label"`
	Type       string         `json:"type"`
	Query      string         `json:"query"`
	Definition string         `json:"definition,omitempty"`
	Datasource *datasourceRef `json:"datasource,omitempty"`
	Current    map[string]any `json:"current,omitempty"`
	Refresh    int            `json:"refresh"`
	Multi      bool           `json:"multi"`
	IncludeAll bool           `json:"includeAll"`
	AllValue   string         `json:"allValue,omitempty"`
	Sort       int            `json:"sort"`
	Hide       int            `json:"hide"`
	Regex      string         `json:"regex"`
}

type gridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

type panel struct {
	// nodeData marks panels that must show data for every node wherever
	// node-exporter runs (the tests check it against a real Prometheus).
	nodeData bool

	ID          int            `json:"id"`
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description,omitempty"`
	GridPos     gridPos        `json:"gridPos"`
	Datasource  *datasourceRef `json:"datasource,omitempty"`
	Targets     []query        `json:"targets,omitempty"`
	FieldConfig *fieldConfig   `json:"fieldConfig,omitempty"`
	Options     map[string]any `json:"options,omitempty"`
	Collapsed   *bool          `json:"collapsed,omitempty"`
	Panels      []panel        `json:"panels,omitempty"`
}

type query struct {
	RefID        string         `json:"refId"`
	Datasource   *datasourceRef `json:"datasource"`
	Expr         string         `json:"expr"`
	LegendFormat string         `json:"legendFormat,omitempty"`
	Range        bool           `json:"range"`
	Instant      bool           `json:"instant"`
}

type fieldConfig struct {
	Defaults  fieldDefaults `json:"defaults"`
	Overrides []any         `json:"overrides"`
}

type fieldDefaults struct {
	Unit   string         `json:"unit,omitempty"`
	Min    *float64       `json:"min,omitempty"`
	Max    *float64       `json:"max,omitempty"`
	Custom map[string]any `json:"custom,omitempty"`
}

// board lays panels out left to right, top to bottom, 24 columns wide.
type board struct {
	d      dashboard
	x, y   int
	rowH   int
	nextID int
}

func newBoard(file, uid, title, desc string, vars ...variable) *board {
	return &board{d: dashboard{
		file:          file,
		UID:           uid,
		Title:         title,
		Description:   desc,
		Tags:          []string{"raydeploy"},
		Timezone:      "browser",
		SchemaVersion: 39,
		Version:       1,
		Editable:      true,
		GraphTooltip:  1, // shared crosshair: line up a spike across panels
		Refresh:       "30s",
		Time:          timeRange{From: "now-1h", To: "now"},
		Templating:    templating{List: append([]variable{datasourceVar()}, vars...)},
		Annotations:   annotations{List: []any{}},
	}}
}

func (b *board) place(p panel, w, h int) {
	if b.x+w > 24 {
		b.x, b.y, b.rowH = 0, b.y+b.rowH, 0
	}
	b.nextID++
	p.ID = b.nextID
	p.GridPos = gridPos{H: h, W: w, X: b.x, Y: b.y}
	b.x += w
	b.rowH = max(b.rowH, h)
	b.d.Panels = append(b.d.Panels, p)
}

func (b *board) row(title string) {
	if b.x > 0 {
		b.x, b.y, b.rowH = 0, b.y+b.rowH, 0
	}
	collapsed := false
	b.place(panel{Type: "row", Title: title, Collapsed: &collapsed}, 24, 1)
	b.x, b.y, b.rowH = 0, b.y+1, 0
}

func (b *board) text(title, markdown string, w, h int) {
	b.place(panel{Type: "text", Title: title, Options: map[string]any{"mode": "markdown", "content": markdown}}, w, h)
}

func (b *board) done() dashboard { return b.d }

func float(v float64) *float64 { return &v }

// q is one query of a panel; legend uses Grafana's {{label}} syntax.
type q struct{ expr, legend string }

func queries(qs []q) []query {
	out := make([]query, len(qs))
	for i, x := range qs {
		out[i] = query{RefID: string(rune('A' + i)), Datasource: promDS, Expr: x.expr, LegendFormat: x.legend, Range: true}
	}
	return out
}

// ts is a time series panel.
func ts(title, unit, desc string, qs ...q) panel {
	p := panel{
		Type: "timeseries", Title: title, Description: desc, Datasource: promDS, Targets: queries(qs),
		FieldConfig: &fieldConfig{Defaults: fieldDefaults{Unit: unit, Custom: map[string]any{
			"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never", "spanNulls": false,
		}}, Overrides: []any{}},
		Options: map[string]any{
			"legend":  map[string]any{"displayMode": "table", "placement": "bottom", "calcs": []string{"mean", "max", "lastNotNull"}, "showLegend": true},
			"tooltip": map[string]any{"mode": "multi", "sort": "desc"},
		},
	}
	if unit == "percent" {
		p.FieldConfig.Defaults.Min = float(0)
		p.FieldConfig.Defaults.Max = float(100)
	}
	return p
}

// stat is a single-value panel.
func stat(title, unit, desc string, qs ...q) panel {
	return panel{
		Type: "stat", Title: title, Description: desc, Datasource: promDS, Targets: queries(qs),
		FieldConfig: &fieldConfig{Defaults: fieldDefaults{Unit: unit}, Overrides: []any{}},
		Options: map[string]any{
			"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
			"colorMode":     "value", "graphMode": "area", "textMode": "auto",
		},
	}
}

func must(p panel) panel { p.nodeData = true; return p }

func datasourceVar() variable {
	return variable{
		Name: "datasource", Label: "Data source", Type: "datasource", Query: "prometheus",
		Current: map[string]any{"selected": true, "text": DatasourceName, "value": DatasourceUID},
		Regex:   "",
	}
}

// nodeVar selects nodes by the "node" label every scraped series carries.
func nodeVar(metric string) variable {
	def := fmt.Sprintf("label_values(%s, node)", metric)
	return variable{
		Name: "node", Label: "Node", Type: "query", Query: def, Definition: def, Datasource: promDS,
		Current: map[string]any{"selected": true, "text": []string{"All"}, "value": []string{"$__all"}},
		Refresh: 2, Multi: true, IncludeAll: true, AllValue: ".*", Sort: 1,
	}
}

// sel builds a selector: metric{node=~"$node",extra...}.
func sel(metric string, matchers ...string) string {
	return metric + "{" + strings.Join(append([]string{`node=~"$node"`}, matchers...), ",") + "}"
}

func rate(metric string, matchers ...string) string {
	return "rate(" + sel(metric, matchers...) + "[$__rate_interval])"
}

const (
	// Devices that are not real disks or NICs: they hide the bottleneck.
	diskDevices   = `device!~"(ram|loop|fd|sr|nbd|zram|dm-)\\d*.*"`
	netDevices    = `device!~"lo|veth.*|docker.*|br-.*|virbr.*|cni.*|flannel.*|cali.*|vxlan.*|tun.*|tap.*"`
	realFS        = `fstype!~"tmpfs|ramfs|squashfs|overlay|nsfs|proc|sysfs|autofs|fuse\\..*|devtmpfs"`
	nodeJob       = `job="node"`
	cadvisorNames = `name!="",name=~"$container"`
)

func (s Stack) dashboards() []dashboard {
	return []dashboard{nodesDashboard(), containersDashboard(), rayDashboard()}
}

func nodesDashboard() dashboard {
	b := newBoard("nodes.json", DashboardNodesUID, "Raydeploy / Nodes",
		"CPU, memory, disk I/O, filesystems, network and GPUs of every node (node-exporter): find the bottleneck.",
		nodeVar(`node_uname_info{job="node"}`))
	cpus := `count by (node) (` + sel("node_cpu_seconds_total", nodeJob, `mode="idle"`) + `)`

	b.row("Overview")
	b.place(must(stat("Nodes up", "none", "node-exporter targets answering.",
		q{`sum(` + sel("up", nodeJob) + `)`, ""})), 4, 5)
	b.place(must(stat("CPUs", "none", "CPU threads over the selected nodes.",
		q{`sum(` + cpus + `)`, ""})), 4, 5)
	b.place(must(stat("Memory", "bytes", "Memory over the selected nodes.",
		q{`sum(` + sel("node_memory_MemTotal_bytes", nodeJob) + `)`, ""})), 4, 5)
	b.place(must(stat("Highest CPU busy", "percent", "The busiest node's CPU use.",
		q{`max(100 * (1 - avg by (node) (` + rate("node_cpu_seconds_total", nodeJob, `mode="idle"`) + `)))`, ""})), 4, 5)
	b.place(must(stat("Highest memory used", "percent", "The fullest node's memory use.",
		q{`max(100 * (1 - ` + sel("node_memory_MemAvailable_bytes", nodeJob) + ` / ` + sel("node_memory_MemTotal_bytes", nodeJob) + `))`, ""})), 4, 5)
	b.place(must(stat("Fullest filesystem", "percent", "The fullest real filesystem of the selected nodes.",
		q{`max(100 * (1 - ` + sel("node_filesystem_avail_bytes", nodeJob, realFS) + ` / ` + sel("node_filesystem_size_bytes", nodeJob, realFS) + `))`, ""})), 4, 5)

	b.row("CPU")
	b.place(must(ts("CPU busy by node", "percent", "Share of all CPU threads not idle.",
		q{`100 * (1 - avg by (node) (` + rate("node_cpu_seconds_total", nodeJob, `mode="idle"`) + `))`, "{{node}}"})), 12, 8)
	b.place(must(ts("CPU by mode", "percent", "user: your code; system: the kernel; iowait: waiting for disks; steal: taken by the hypervisor.",
		q{`100 * sum by (node, mode) (` + rate("node_cpu_seconds_total", nodeJob, `mode!="idle"`) + `) / on (node) group_left ` + cpus, "{{node}} {{mode}}"})), 12, 8)
	b.place(must(ts("Load per CPU", "none", "Load average divided by CPU threads: above 1 means runnable work waits for a CPU.",
		q{sel("node_load1", nodeJob) + ` / on (node) ` + cpus, "{{node}} 1m"},
		q{sel("node_load15", nodeJob) + ` / on (node) ` + cpus, "{{node}} 15m"})), 12, 8)
	b.place(ts("Pressure stall (PSI)", "percentunit", "Share of time tasks stalled waiting for CPU, memory or I/O (kernels with PSI).",
		q{rate("node_pressure_cpu_waiting_seconds_total", nodeJob), "{{node}} cpu"},
		q{rate("node_pressure_memory_waiting_seconds_total", nodeJob), "{{node}} memory"},
		q{rate("node_pressure_io_waiting_seconds_total", nodeJob), "{{node}} io"}), 12, 8)

	b.row("Memory")
	b.place(must(ts("Memory used by node", "percent", "Memory in use (total minus available).",
		q{`100 * (1 - ` + sel("node_memory_MemAvailable_bytes", nodeJob) + ` / ` + sel("node_memory_MemTotal_bytes", nodeJob) + `)`, "{{node}}"})), 12, 8)
	b.place(must(ts("Memory by node", "bytes", "Used, page cache and buffers, and total.",
		q{sel("node_memory_MemTotal_bytes", nodeJob) + ` - ` + sel("node_memory_MemAvailable_bytes", nodeJob), "{{node}} used"},
		q{sel("node_memory_Cached_bytes", nodeJob) + ` + ` + sel("node_memory_Buffers_bytes", nodeJob), "{{node}} cache+buffers"},
		q{sel("node_memory_MemTotal_bytes", nodeJob), "{{node}} total"})), 12, 8)
	b.place(must(ts("Swap used", "bytes", "Swap in use: any growth under load means memory is short.",
		q{sel("node_memory_SwapTotal_bytes", nodeJob) + ` - ` + sel("node_memory_SwapFree_bytes", nodeJob), "{{node}}"})), 12, 8)
	b.place(must(ts("Major page faults", "ops", "Pages read back from disk: high rates mean thrashing.",
		q{rate("node_vmstat_pgmajfault", nodeJob), "{{node}}"})), 12, 8)

	b.row("Disk I/O")
	b.place(ts("Disk throughput", "Bps", "Bytes read and written per second by disk.",
		q{`sum by (node, device) (` + rate("node_disk_read_bytes_total", nodeJob, diskDevices) + `)`, "{{node}} {{device}} read"},
		q{`sum by (node, device) (` + rate("node_disk_written_bytes_total", nodeJob, diskDevices) + `)`, "{{node}} {{device}} write"}), 12, 8)
	b.place(ts("Disk busy", "percentunit", "Time the disk had I/O in flight: near 100% the disk is the bottleneck.",
		q{rate("node_disk_io_time_seconds_total", nodeJob, diskDevices), "{{node}} {{device}}"}), 12, 8)
	b.place(ts("Disk IOPS", "iops", "Reads and writes completed per second.",
		q{rate("node_disk_reads_completed_total", nodeJob, diskDevices), "{{node}} {{device}} read"},
		q{rate("node_disk_writes_completed_total", nodeJob, diskDevices), "{{node}} {{device}} write"}), 12, 8)
	b.place(ts("Disk latency", "s", "Average time per read and per write.",
		q{rate("node_disk_read_time_seconds_total", nodeJob, diskDevices) + ` / ` + rate("node_disk_reads_completed_total", nodeJob, diskDevices), "{{node}} {{device}} read"},
		q{rate("node_disk_write_time_seconds_total", nodeJob, diskDevices) + ` / ` + rate("node_disk_writes_completed_total", nodeJob, diskDevices), "{{node}} {{device}} write"}), 12, 8)

	b.row("Filesystems")
	b.place(must(ts("Filesystem used", "percent", "Real filesystems (no tmpfs, overlay).",
		q{`100 * (1 - ` + sel("node_filesystem_avail_bytes", nodeJob, realFS) + ` / ` + sel("node_filesystem_size_bytes", nodeJob, realFS) + `)`, "{{node}} {{mountpoint}}"})), 12, 8)
	b.place(must(ts("Filesystem free", "bytes", "Space left to unprivileged users.",
		q{sel("node_filesystem_avail_bytes", nodeJob, realFS), "{{node}} {{mountpoint}}"})), 12, 8)

	b.row("Network")
	b.place(must(ts("Network receive", "Bps", "Bytes received per second on physical interfaces.",
		q{`sum by (node, device) (` + rate("node_network_receive_bytes_total", nodeJob, netDevices) + `)`, "{{node}} {{device}}"})), 12, 8)
	b.place(must(ts("Network transmit", "Bps", "Bytes sent per second on physical interfaces.",
		q{`sum by (node, device) (` + rate("node_network_transmit_bytes_total", nodeJob, netDevices) + `)`, "{{node}} {{device}}"})), 12, 8)
	b.place(must(ts("Network errors and drops", "pps", "Packets in error or dropped: a faulty link or a full queue.",
		q{`sum by (node) (` + rate("node_network_receive_errs_total", nodeJob, netDevices) + ` + ` + rate("node_network_transmit_errs_total", nodeJob, netDevices) + `)`, "{{node}} errors"},
		q{`sum by (node) (` + rate("node_network_receive_drop_total", nodeJob, netDevices) + ` + ` + rate("node_network_transmit_drop_total", nodeJob, netDevices) + `)`, "{{node}} drops"})), 12, 8)
	b.place(must(ts("TCP retransmits", "pps", "Segments sent again: packet loss between nodes slows object transfers.",
		q{rate("node_netstat_Tcp_RetransSegs", nodeJob), "{{node}}"})), 12, 8)

	b.row("GPU")
	b.text("About the GPU panels",
		"GPU panels show data only on nodes with NVIDIA GPUs: from an NVIDIA **DCGM exporter** when one is scraped "+
			"(`Stack.DCGMExporterPort`, metrics `DCGM_FI_DEV_*`), and from Ray's own GPU metrics "+
			"(`ray_node_gpus_utilization`, `ray_node_gram_used`) otherwise. No data here means no GPU was found.", 24, 3)
	b.place(ts("GPU utilization", "percent", "Per GPU.",
		q{`avg by (node, gpu) (` + sel("DCGM_FI_DEV_GPU_UTIL") + `)`, "{{node}} GPU {{gpu}} (DCGM)"},
		q{`avg by (node, GpuIndex) (` + sel("ray_node_gpus_utilization") + `)`, "{{node}} GPU {{GpuIndex}} (Ray)"}), 12, 8)
	b.place(ts("GPU memory used", "decmbytes", "Frame buffer in use per GPU.",
		q{`avg by (node, gpu) (` + sel("DCGM_FI_DEV_FB_USED") + `)`, "{{node}} GPU {{gpu}} (DCGM)"},
		q{`avg by (node, GpuIndex) (` + sel("ray_node_gram_used") + `)`, "{{node}} GPU {{GpuIndex}} (Ray)"}), 12, 8)
	b.place(ts("GPU temperature", "celsius", "DCGM exporter only.",
		q{`avg by (node, gpu) (` + sel("DCGM_FI_DEV_GPU_TEMP") + `)`, "{{node}} GPU {{gpu}}"}), 12, 8)
	b.place(ts("GPU power", "watt", "DCGM exporter only.",
		q{`avg by (node, gpu) (` + sel("DCGM_FI_DEV_POWER_USAGE") + `)`, "{{node}} GPU {{gpu}}"}), 12, 8)
	return b.done()
}

func containersDashboard() dashboard {
	containerVar := variable{
		Name: "container", Label: "Container", Type: "query",
		Query:      `label_values(container_last_seen{job="cadvisor",node=~"$node",name!=""}, name)`,
		Definition: `label_values(container_last_seen{job="cadvisor",node=~"$node",name!=""}, name)`,
		Datasource: promDS, Current: map[string]any{"selected": true, "text": []string{"All"}, "value": []string{"$__all"}},
		Refresh: 2, Multi: true, IncludeAll: true, AllValue: ".*", Sort: 1,
	}
	b := newBoard("containers.json", DashboardContainersUID, "Raydeploy / Containers",
		"CPU, memory, network and disk of every container on every node (cAdvisor).",
		nodeVar(`container_last_seen{job="cadvisor"}`), containerVar)
	job := `job="cadvisor"`
	by := func(expr string) string { return `sum by (node, name) (` + expr + `)` }

	b.row("Containers")
	b.place(stat("Running containers", "none", "Containers cAdvisor sees on the selected nodes.",
		q{`count(` + sel("container_last_seen", job, cadvisorNames) + `)`, ""}), 6, 5)
	b.place(ts("Containers by node", "none", "",
		q{`count by (node) (` + sel("container_last_seen", job, cadvisorNames) + `)`, "{{node}}"}), 18, 5)

	b.row("CPU")
	b.place(ts("CPU by container", "none", "CPU cores used.",
		q{by(rate("container_cpu_usage_seconds_total", job, cadvisorNames)), "{{node}} {{name}}"}), 12, 8)
	b.place(ts("CPU throttled", "s", "Time throttled by the container's CPU limit, per second.",
		q{by(rate("container_cpu_cfs_throttled_seconds_total", job, cadvisorNames)), "{{node}} {{name}}"}), 12, 8)

	b.row("Memory")
	b.place(ts("Memory working set", "bytes", "What the kernel will not reclaim: the figure OOM kills go by.",
		q{by(sel("container_memory_working_set_bytes", job, cadvisorNames)), "{{node}} {{name}}"}), 12, 8)
	b.place(ts("Memory RSS and cache", "bytes", "",
		q{by(sel("container_memory_rss", job, cadvisorNames)), "{{node}} {{name}} rss"},
		q{by(sel("container_memory_cache", job, cadvisorNames)), "{{node}} {{name}} cache"}), 12, 8)

	b.row("Network")
	b.place(ts("Network receive", "Bps", "Containers on the host network show the node's interfaces.",
		q{by(rate("container_network_receive_bytes_total", job, cadvisorNames)), "{{node}} {{name}}"}), 12, 8)
	b.place(ts("Network transmit", "Bps", "",
		q{by(rate("container_network_transmit_bytes_total", job, cadvisorNames)), "{{node}} {{name}}"}), 12, 8)

	b.row("Disk")
	b.place(ts("Disk reads", "Bps", "",
		q{by(rate("container_fs_reads_bytes_total", job, cadvisorNames)), "{{node}} {{name}}"}), 12, 8)
	b.place(ts("Disk writes", "Bps", "",
		q{by(rate("container_fs_writes_bytes_total", job, cadvisorNames)), "{{node}} {{name}}"}), 12, 8)
	return b.done()
}

func rayDashboard() dashboard {
	b := newBoard("ray-cluster.json", DashboardRayUID, "Raydeploy / Ray cluster",
		"Ray's own metrics: nodes, tasks, actors, resources and object store, by node. Ray's detailed dashboards are in the folder \"ray\".",
		nodeVar(`up{job=~"ray|ray-discovered"}`))
	ray := `job=~"ray|ray-discovered"`

	b.row("Cluster")
	b.place(stat("Active nodes", "none", "Nodes Ray reports alive.",
		q{`sum(ray_cluster_active_nodes{` + ray + `})`, ""}), 6, 5)
	b.place(stat("Metrics endpoints up", "none", "Ray metrics endpoints Prometheus reaches.",
		q{`sum(` + sel("up", ray) + `)`, ""}), 6, 5)
	b.place(ts("Active nodes by type", "none", "",
		q{`sum by (node_type) (ray_cluster_active_nodes{` + ray + `})`, "{{node_type}}"}), 12, 5)

	b.row("Work")
	b.place(ts("Tasks by state", "none", "Pending tasks that do not drain mean resources are short.",
		q{`sum by (State) (ray_tasks{` + ray + `})`, "{{State}}"}), 12, 8)
	b.place(ts("Actors by state", "none", "",
		q{`sum by (State) (ray_actors{` + ray + `})`, "{{State}}"}), 12, 8)

	b.row("Resources")
	b.place(ts("Logical resources", "none", "Ray's resources (CPU, GPU, memory, ...) used and available.",
		q{`sum by (Name, State) (ray_resources{` + ray + `})`, "{{Name}} {{State}}"}), 12, 8)
	b.place(ts("Object store memory by node", "bytes", "Object store use per node and location (memory, spilled).",
		q{`sum by (node, Location) (` + sel("ray_object_store_memory", ray) + `)`, "{{node}} {{Location}}"}), 12, 8)

	b.row("Nodes")
	b.place(ts("CPU utilization by node", "percent", "As Ray's node agent reports it.",
		q{`avg by (node) (` + sel("ray_node_cpu_utilization", ray) + `)`, "{{node}}"}), 12, 8)
	b.place(ts("Memory used by node", "percent", "As Ray's node agent reports it.",
		q{`100 * sum by (node) (` + sel("ray_node_mem_used", ray) + `) / sum by (node) (` + sel("ray_node_mem_total", ray) + `)`, "{{node}}"}), 12, 8)
	return b.done()
}
