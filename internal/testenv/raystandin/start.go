package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// node is the part every node (head or worker) runs: the agent and metrics.
type node struct {
	opts    startOptions
	log     *slog.Logger
	auth    authConfig
	rec     nodeRecord
	gcsAddr string // head ip:port of the registry

	session atomic.Value // string: the session name (known to workers after registering)
	gcsOK   atomic.Int64 // unix nanos of the last successful contact with the GCS
}

func (n *node) sessionName() string {
	s, _ := n.session.Load().(string)
	return s
}

// start runs `ray start --block` until ctx ends.
func start(ctx context.Context, opts startOptions, logger *slog.Logger, stdout io.Writer) error {
	auth, err := loadAuth()
	if err != nil {
		return err
	}
	if opts.NodeIP == "" {
		opts.NodeIP = defaultNodeIP()
	}
	memTotal, memAvail, err := memInfo()
	if err != nil {
		return fmt.Errorf("read memory: %w", err)
	}
	hostname, _ := os.Hostname()
	cpus := runtime.NumCPU()
	if opts.NumCPUsSet {
		cpus = opts.NumCPUs
	}
	objStore := opts.ObjectStoreMemory
	if objStore == 0 {
		objStore = memAvail * 3 / 10
	}
	memory := opts.Memory
	if memory == 0 {
		memory = memAvail - objStore
	}
	n := &node{
		opts: opts, log: logger.With("node_ip", opts.NodeIP), auth: auth,
		rec: nodeRecord{
			NodeID: newNodeID(), NodeIP: opts.NodeIP, Hostname: hostname, IsHead: opts.Head,
			CPUs: cpus, GPUs: opts.NumGPUs, MemTotal: memTotal, Memory: memory, ObjectStore: objStore,
			Resources: opts.Resources, Labels: map[string]string{},
		},
	}
	for k, v := range opts.Labels {
		n.rec.Labels[k] = v
	}
	n.rec.Labels["ray.io/node-id"] = n.rec.NodeID

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	serve := func(name string, ln net.Listener, h http.Handler) {
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s server: %w", name, err)
			}
		}()
		go func() {
			defer wg.Done()
			<-ctx.Done()
			sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
			defer c()
			_ = srv.Shutdown(sctx)
		}()
	}
	listen := func(host string, port int) (net.Listener, error) {
		var lc net.ListenConfig
		return lc.Listen(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	}

	// Every node: agent and metrics.
	agentLn, err := listen(opts.NodeIP, opts.DashboardAgentListenPort)
	if err != nil {
		return fmt.Errorf("dashboard agent: %w", err)
	}
	n.rec.AgentPort = agentLn.Addr().(*net.TCPAddr).Port
	metricsLn, err := listen(opts.NodeIP, opts.MetricsExportPort)
	if err != nil {
		agentLn.Close()
		return fmt.Errorf("metrics export: %w", err)
	}
	n.rec.MetricsPort = metricsLn.Addr().(*net.TCPAddr).Port

	var h *head
	if opts.Head {
		n.gcsAddr = net.JoinHostPort(opts.NodeIP, strconv.Itoa(opts.Port))
		h, err = newHead(n)
		if err != nil {
			agentLn.Close()
			metricsLn.Close()
			return err
		}
		gcsLn, err := listen(opts.NodeIP, opts.Port)
		if err != nil {
			agentLn.Close()
			metricsLn.Close()
			return fmt.Errorf("GCS port: %w", err)
		}
		serve("gcs", gcsLn, h.gcsHandler())
		if opts.IncludeDashboard {
			dashLn, err := listen(opts.DashboardHost, opts.DashboardPort)
			if err != nil {
				cancel()
				wg.Wait()
				return fmt.Errorf("dashboard: %w", err)
			}
			serve("dashboard", dashLn, auth.wrap(h.dashboardHandler()))
			host := opts.DashboardHost
			if host == "0.0.0.0" || host == "::" {
				host = opts.NodeIP
			}
			h.dashboardURL = "http://" + net.JoinHostPort(host, strconv.Itoa(dashLn.Addr().(*net.TCPAddr).Port))
		}
	} else {
		n.gcsAddr = opts.Address
	}
	serve("agent", agentLn, n.agentHandler())
	serve("metrics", metricsLn, n.metricsHandler(h))

	if h != nil {
		wg.Add(1)
		go func() { defer wg.Done(); h.loop(ctx) }()
		fmt.Fprintf(stdout, "Ray runtime started.\n\nNext steps\n  To add another node to this Ray cluster, run\n    ray start --address='%s'\n\n  To submit a Ray job using the Ray Jobs CLI:\n    RAY_ADDRESS='%s' ray job submit -- python my_script.py\n", n.gcsAddr, h.dashboardURL)
	} else {
		wg.Add(1)
		go func() { defer wg.Done(); n.workerLoop(ctx, errc) }()
		fmt.Fprintln(stdout, "Ray runtime started.")
	}
	fmt.Fprintln(stdout, "--block\n  This command will now block forever until terminated by a signal.")

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	cancel()
	if h != nil {
		h.jobs.stopAll()
		h.serve.stopAll()
	}
	wg.Wait()
	return runErr
}

// workerLoop registers with the head (retrying until it answers) and then
// heartbeats every second. It ends when ctx ends or the head declares the
// node dead (then it reports an error: a dead Ray node exits).
func (n *node) workerLoop(ctx context.Context, errc chan<- error) {
	hc := &http.Client{Timeout: 5 * time.Second}
	base := "http://" + n.gcsAddr
	t := time.NewTicker(heartbeatPeriod)
	defer t.Stop()
	registered := false
	for {
		if !registered {
			var resp struct {
				SessionName string `json:"session_name"`
			}
			status, err := postJSON(ctx, hc, base+"/_standin/register", n.rec, &resp)
			switch {
			case err != nil:
				n.log.Warn("waiting for the head's GCS", "address", n.gcsAddr, "err", err)
			case status != http.StatusOK:
				n.log.Warn("head refused registration", "status", status)
			default:
				registered = true
				n.session.Store(resp.SessionName)
				n.gcsOK.Store(time.Now().UnixNano())
				n.log.Info("registered with the head", "node_id", n.rec.NodeID, "address", n.gcsAddr)
			}
		} else {
			status, err := postJSON(ctx, hc, base+"/_standin/heartbeat", map[string]string{"node_id": n.rec.NodeID}, nil)
			switch {
			case err != nil:
				n.log.Warn("heartbeat failed", "err", err)
			case status == http.StatusGone:
				errc <- fmt.Errorf("the head marked node %s dead", n.rec.NodeID)
				return
			case status == http.StatusOK:
				n.gcsOK.Store(time.Now().UnixNano())
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// postJSON posts v as JSON and decodes a 200 answer into out (when non-nil).
func postJSON(ctx context.Context, hc *http.Client, url string, v, out any) (int, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}

// writeFileAtomic writes data to path through a temp file and a rename.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
