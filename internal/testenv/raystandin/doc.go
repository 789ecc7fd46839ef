// Command raystandin is a test-only stand-in for Ray's `ray` CLI, installed as
// /usr/local/bin/ray in the stand-in node image because the real Ray image
// cannot be pulled where the tests run. Library code never imports it.
//
// It implements what the SDK drives: `ray --version`, `ray start` (head and
// worker, with the flags the SDK passes, validated like Ray's) and `ray stop`.
// A head serves a small cluster registry of its own on --port (only stand-in
// workers talk to it), the dashboard on --dashboard-host:--dashboard-port with
// Ray's real paths and JSON shapes (version, health, nodes, cluster status,
// Jobs API, Serve REST API, token auth), and writes Prometheus' file-SD list
// and session_latest under --temp-dir. Every node serves the agent
// (--dashboard-agent-listen-port: health endpoints, plus /_standin/tasks that
// runs a Python task for the shim in python/ray) and Prometheus metrics
// (--metrics-export-port) with real Ray metric names.
//
// What it does not do: schedule by resources, run Serve replicas or a Serve
// proxy (applications are stored and reported RUNNING), object store, actors.
package main
