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
// Serve: PUT /api/serve/applications/ is validated like Ray's schema, then
// each application's code is imported by replica processes on the head
// (python/ray/serve: the shim's @serve.deployment, @serve.ingress, .bind()
// and the replica runner), which serve it behind an HTTP proxy on
// http_options' port; applications go DEPLOYING, then RUNNING or
// DEPLOY_FAILED with the import's traceback (see serve.go).
//
// What it does not do: schedule by resources, place Serve replicas on
// workers, autoscale, compose deployments, object store, actors.
package main
