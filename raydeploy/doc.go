// Package raydeploy deploys, checks and removes a Ray cluster on machines
// you own: the Deployer (Deploy, Plan, Validate, Down) and its six
// checkpoints, over the desired cluster and how it is loaded.
//
// Where each concern lives (files of this package):
//
//   - config*.go, defaults.go, inventory*.go: the config model (Cluster,
//     Node, RayConfig, Secret, ByteSize), its validation (config_validate.go)
//     and defaults (defaults.go, which also holds the Deployer's defaults),
//     the loaders: Load and the YAML format (config_load.go,
//     config_yaml.go), the Ansible inventory import (inventory*.go). These
//     files import nothing of the checkpoints, SSH or Docker.
//   - deployer.go: New, Options, Deploy, Plan, List, Close.
//   - cp_*.go and down.go: one file per checkpoint.
//   - connect.go, facts.go: the per-node SSH and Docker connections.
//   - ray_services.go: Ray's head and worker ServiceSpecs.
//
// Failures of single nodes are *checkpoint.NodeError values (errors.As
// finds them; checkpoint.FailedNodes lists their nodes). ServiceSpec is
// service.Spec under the name users of this package see.
//
// # Loading
//
// Load dispatches by path: a .yaml or .yml file is the YAML format below
// (LoadFile, ParseYAML); a .ini file, or a directory holding inventory.ini,
// is an Ansible inventory (LoadInventory). Loaders do not validate and fill
// no defaults: call Cluster.Validate, then Cluster.WithDefaults. Every
// problem is a *FieldError carrying file, line and the field path, collected
// in one *ValidationError:
//
//	cluster.yaml:4: workers[0]: unknown key "adress"
//	cluster.yaml:9: head.port: expected an integer, got !!str "ssh"
//	workers[1].address: must not be empty
//	workers[2].name: duplicate of workers[0].name "w1"
//	ray.ports.dashboard: 6379 collides with ray.ports.gcs
//
// # Defaults and precedence
//
// Each per-node value comes from the node itself, else from the cluster
// default (the ssh section; ray.resources), else from the built-in default:
// SSH port 22, user $USER, known_hosts ~/.ssh/known_hosts, trust on first
// use off, Ray 2.58.0 in rayproject/ray:<version>, ports 6379 (GCS), 8265
// (dashboard), 10001 (client), 8080 (metrics), 10002-19999 (workers), 52365
// (dashboard agent), 8000 (Serve), /dev/shm sized by AutoShmSize, state in
// $XDG_STATE_HOME/raydeploy/<name> or ~/.local/state/raydeploy/<name>.
//
// # The YAML format
//
// Keys are strict: an unknown key is an error. Sizes take units (8GiB,
// 200GB). Secrets are never written in the file: name environment
// variables instead (password_env, sudo_password_env, key_passphrase_env,
// ray.token_auth.token_env). The plaintext password and sudo_password keys
// exist, but Load warns about them and they are never logged or saved.
//
//	# A five-node Ray cluster on machines we own (documentation addresses).
//	cluster_name: lab
//
//	ssh:
//	  user: ray
//	  port: 22
//	  key_file: ~/.ssh/id_ed25519
//	  known_hosts: ~/.ssh/known_hosts
//	  trust_on_first_use: false
//	  sudo_password_env: RAYDEPLOY_SUDO_PASSWORD
//	  jump:
//	    address: bastion.example.net
//	    user: jump
//	  timeouts:              # the defaults
//	    connect: 10s
//	    connect_attempts: 5
//	    connect_total: 30s
//	    keepalive_interval: 15s
//	    keepalive_timeout: 15s
//
//	head:
//	  name: head
//	  address: 192.0.2.10
//	  labels:
//	    example.com/rack: r1
//	  resources:
//	    cpus: 0            # keep tasks off the head
//
//	workers:
//	  - name: w1
//	    address: 192.0.2.11
//	  - name: w2
//	    address: 192.0.2.12
//	  - name: w3
//	    address: 192.0.2.13
//	    port: 2222
//	  - name: gpu1
//	    address: gpu1.example.net
//	    user: admin
//	    key_file: ~/.ssh/gpu_ed25519
//	    resources:
//	      gpus: 2
//	      custom:
//	        tts_slot: 4
//
//	ray:
//	  version: "2.58.0"
//	  image: rayproject/ray:2.58.0-py312-cpu
//	  ports:
//	    gcs: 6379
//	    dashboard: 8265
//	    client: 10001
//	    metrics: 8080
//	    min_worker_port: 10002
//	    max_worker_port: 19999
//	    dashboard_agent: 52365
//	    serve_http: 8000
//	  resources:
//	    cpu_fraction: 0.8
//	    memory_fraction: 0.8
//	  shm_size: 8GiB
//	  env:
//	    RAY_LOG_LEVEL: INFO
//	  token_auth:
//	    enabled: true
//	    token_env: RAY_AUTH_TOKEN
//	  extra_start_args:
//	    - --disable-usage-stats
//
//	state_dir: ~/.local/state/raydeploy/lab
//
// Node keys (head and each worker): name, address, port, user, key_file,
// key_passphrase_env, agent, password_env, password, sudo_password_env,
// sudo_password, labels, resources. The ssh section takes user, port, the
// same auth keys, known_hosts, trust_on_first_use, jump (address, port,
// user and auth keys) and timeouts. resources takes cpus, gpus, memory,
// cpu_fraction, memory_fraction (each in (0,1]; cpus and cpu_fraction
// exclude each other, as do memory and memory_fraction) and custom.
//
// ssh.timeouts (Go durations like 10s, 500ms, 1m30s, each at least 1s;
// SSHTimeouts) bound how long a node that stops answering is waited for,
// the nodes and the jump host alike: connect is each connection attempt
// (TCP and SSH handshake), connect_attempts the attempts of one dial
// (1-100), connect_total the time after which no new attempt starts; a
// keepalive goes out every keepalive_interval on every connection, and one
// unanswered for keepalive_timeout (default: keepalive_interval) closes the
// connection.
// A node frozen or cut off while connected is noticed within
// keepalive_interval + keepalive_timeout; a dial to it gives up within
// connect_total + connect. A step on such a node fails within the sum
// (SSHTimeouts.DeadNodeBound, 70s with the defaults), its error naming the
// node and saying "no answer to keepalive within ..." or "ssh handshake: no
// answer within ...".
//
// # Ansible inventory import
//
// The inventory.ini dialect: [group], [group:vars] and [group:children]
// sections; host lines "name key=value ..." with '...' / "..." quoting,
// host ranges like node[01:04] and name:port; comments start with # or ;.
// group_vars/<group>.yml and host_vars/<host>.yml (or .yaml, or a
// directory of them) beside the inventory are read too. Variable
// precedence, lowest first, as in Ansible: [group:vars] of the inventory
// (all, then parents before children), group_vars/all, group_vars/<group>
// (same order), the host line, host_vars/<host>.
//
// Limits: the host lines may expand to at most InventoryOptions.MaxHosts
// host entries (DefaultMaxInventoryHosts, 10,000; a line that would pass
// it is refused before its hosts are made); ranges are counted without
// overflow up to the int64 limit; groups and their :children links are
// resolved in time linear in their number, cycles reported. Errors and
// warnings never show the value of a password or other secret variable:
// they name the file, line and key, and any value after a secret-like key
// (password, pass, token, secret, ...) is replaced by [redacted].
//
// The head is the one host of [head_nodes], the workers the hosts of
// [worker_nodes] (InventoryOptions renames them); a parent group of both
// (like [ray_cluster:children]) names the cluster, else "ray".
//
// Per-host variables: ansible_host (ansible_ssh_host), ansible_port
// (ansible_ssh_port), ansible_user (ansible_ssh_user),
// ansible_ssh_private_key_file (ansible_private_key_file), ansible_password
// (ansible_ssh_pass, ansible_ssh_password), ansible_become_pass
// (ansible_become_password, ansible_sudo_pass, ansible_sudo_password),
// ray_num_cpus, ray_num_gpus, ray_memory, ray_cpu_fraction and
// ray_memory_fraction (0.8 or 80%; ray_resource_fraction sets both).
//
// Cluster-wide variables, taken from the head host's variables (a worker
// with a different value gets a warning): ray_cluster_name (cluster_name),
// ray_version, ray_image (ray_docker_image), ray_head_port (ray_port,
// ray_gcs_port), ray_dashboard_port (dashboard_port), ray_client_port,
// ray_metrics_port (ray_metrics_export_port), ray_min_worker_port,
// ray_max_worker_port, ray_dashboard_agent_port, ray_serve_port
// (serve_port), ray_shm_size.
//
// Read without effect: ansible_python_interpreter, ansible_connection (ssh
// only), ansible_become, ansible_become_method, ansible_become_user.
// ansible_ssh_common_args, ansible_ssh_extra_args and
// ansible_host_key_checking give a warning: host keys are always checked.
// Every other variable is ignored with a warning. Jinja templates are not
// evaluated: a supported variable holding one is an error. Plaintext
// passwords are kept in memory as Secret with a warning naming the host and
// variable, never the value.
package raydeploy
