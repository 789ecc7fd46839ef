package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/raydeploy/sdk/internal/dockerx"
	"github.com/raydeploy/sdk/internal/imagerelay"
	"github.com/raydeploy/sdk/internal/sshx"
	"github.com/raydeploy/sdk/internal/testenv"
	"github.com/raydeploy/sdk/internal/testenv/hollow"
)

// relayBench side-loads one image to the first k of n testenv nodes, for
// each k in sizes (n is the largest), twice: directly from the controller
// (what ray-deployment does without Options.ImageRelay) and through the
// node pipeline, and prints the controller's bytes, wall times, the per-hop
// cost and the model for 200 nodes and a 1.5 GB image.
func relayBench(ctx context.Context, sizes []int, mib int) error {
	n := slices.Max(sizes)
	start := time.Now()
	env, err := testenv.Start(ctx, testenv.Options{Nodes: n, Logf: logf})
	if err != nil {
		return fmt.Errorf("%d testenv nodes: %w", n, err)
	}
	defer env.Close()
	logf("  %d testenv nodes up in %s", n, time.Since(start).Round(time.Second))
	dir, err := os.MkdirTemp("", "raydeploy-scalebench-relay-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	const ref = "raydeploy-scale/relay:bench"
	archive, wantID, err := hollow.ImageArchive(ref, "2.40.0", "3.11.2", mib<<20)
	if err != nil {
		return err
	}
	file, known := filepath.Join(dir, "image.tar"), filepath.Join(dir, "known_hosts")
	for p, b := range map[string][]byte{file: archive, known: env.KnownHosts()} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return err
		}
	}
	archive = nil
	var all []imagerelay.Node
	engines := map[string]*dockerx.Engine{}
	for _, nd := range env.Nodes {
		c, err := sshx.Dial(ctx, sshx.Config{Host: nd.Address, Port: nd.Port, User: "root",
			Auth: sshx.Auth{Signers: []ssh.Signer{env.ClientKey}}, KnownHostsFile: known})
		if err != nil {
			return err
		}
		defer c.Close()
		all = append(all, imagerelay.Node{ID: nd.Name, Conn: c, Address: nd.Address, Port: nd.Port})
		e, err := dockerx.New(dockerx.Options{Node: nd.Name, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return c.DialUnix(ctx, "/var/run/docker.sock")
		}})
		if err != nil {
			return err
		}
		defer e.Close()
		engines[nd.Name] = e
	}
	removeAll := func() {
		for _, nd := range all {
			_, _ = nd.Conn.Run(ctx, "docker rmi -f "+ref+" >/dev/null 2>&1; true")
		}
	}
	var hops []float64
	for _, k := range sizes {
		h, err := relayOnce(ctx, all[:k], engines, file, ref, wantID, removeAll)
		if err != nil {
			return fmt.Errorf("%d nodes: %w", k, err)
		}
		hops = append(hops, h)
	}
	// The model: every machine has a link of bw bytes/s. Direct: the
	// controller's link carries N copies, each node also loads at its own
	// rate. Relay: every link carries one copy, streaming, each hop adds its
	// measured delay h, and the last node loads after its bytes arrive.
	const nodes200, gb = 200, 1.5e9
	h := max(slices.Max(hops), 0)
	fmt.Printf("  model from the largest per-hop delay measured (%.3fs):\n", h)
	for _, gbit := range []float64{1, 10} {
		bw := gbit * 1e9 / 8
		fmt.Printf("  model, 200 nodes, 1.5 GB image, %2.0f Gbit/s links: direct %5.0fs (the controller sends 300 GB); relay %4.0fs (the controller sends 1.5 GB: %.1fs streaming + 199 hops x %.3fs)\n",
			gbit, nodes200*gb/bw, gb/bw+(nodes200-1)*h, gb/bw, h)
	}
	fmt.Printf("  (both plus the nodes' own docker load, which overlaps the stream)\n")
	return nil
}

// relayOnce side-loads the image to nodes directly and through the relay,
// prints the figures and returns the fitted per-hop delay in seconds.
func relayOnce(ctx context.Context, nodes []imagerelay.Node, engines map[string]*dockerx.Engine, file, ref, wantID string, removeAll func()) (float64, error) {
	n := len(nodes)
	size, err := os.Stat(file)
	if err != nil {
		return 0, err
	}
	verify := func() error {
		for _, nd := range nodes {
			got, err := engines[nd.ID].ImageID(ctx, ref)
			if err != nil || got != wantID {
				return fmt.Errorf("node %s: image %s: %q %v", nd.ID, ref, got, err)
			}
		}
		return nil
	}

	// Direct side-load, all nodes at once, as ray-deployment's fan-out does.
	removeAll()
	var direct atomic.Int64
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, nd := range nodes {
		wg.Go(func() {
			var last int64
			errs[i] = dockerx.SideLoad(ctx, file, ref, wantID, engines[nd.ID], func(_ string, sent int64) {
				direct.Add(sent - last)
				last = sent
			})
		})
	}
	wg.Wait()
	tDirect := time.Since(t0)
	for _, err := range errs {
		if err != nil {
			return 0, fmt.Errorf("direct side-load: %w", err)
		}
	}
	if err := verify(); err != nil {
		return 0, err
	}

	// Through the nodes.
	removeAll()
	t0 = time.Now()
	res, err := imagerelay.Distribute(ctx, file, nodes, imagerelay.Options{})
	tRelay := time.Since(t0)
	if err != nil {
		return 0, fmt.Errorf("relay: %w", err)
	}
	if len(res.Failed) > 0 || len(res.Skipped) > 0 {
		return 0, fmt.Errorf("relay: failed %v, skipped %v", res.Failed, res.Skipped)
	}
	if err := verify(); err != nil {
		return 0, fmt.Errorf("relay: %w", err)
	}
	removeAll()

	// Per-hop cost: least squares of the time the last byte reached each
	// node over its position in the chain.
	var xs, ys []float64
	var arr []string
	lastLoad := 0.0
	for i, id := range res.Chains[0] {
		xs = append(xs, float64(i))
		ys = append(ys, res.Received[id].Seconds())
		lastLoad = max(lastLoad, res.Arrived[id].Seconds())
		arr = append(arr, fmt.Sprintf("%s %.2fs/%.2fs", id, res.Received[id].Seconds(), res.Arrived[id].Seconds()))
	}
	first, hop := fit(xs, ys)
	mb := float64(size.Size()) / 1e6
	fmt.Printf("  %d nodes, image %.1f MB (every node checked by image ID afterwards)\n", n, mb)
	fmt.Printf("  direct side-load: controller sent %7.1f MB (%.2fx the image) in %6.2fs\n", float64(direct.Load())/1e6, float64(direct.Load())/float64(size.Size()), tDirect.Seconds())
	fmt.Printf("  node relay:       controller sent %7.1f MB (%.2fx the image) in %6.2fs (relay/direct wall x%.2f; before the first byte: %.2fs probing, preparing and connecting the hops)\n",
		float64(res.ControllerBytes)/1e6, float64(res.ControllerBytes)/float64(size.Size()), tRelay.Seconds(), tRelay.Seconds()/tDirect.Seconds(), res.Setup.Seconds())
	fmt.Printf("  last byte received / load done, along the chain: %s\n", strings.Join(arr, ", "))
	fmt.Printf("  fitted: first node has the image after %.2fs, each hop adds %+.3fs (stream rate %.1f MB/s); direct per-node load rate %.1f MB/s\n",
		first, hop, mb/max(first, 1e-9), mb/tDirect.Seconds())
	return hop, nil
}
