// Command sandbox starts a local test cluster of real sshd + dockerd nodes in
// Docker and prints how to reach them. It keeps the cluster until interrupted
// (Ctrl-C), or for -hold, then removes every container and network it made.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/raydeploy/sdk/internal/testenv"
)

func main() {
	nodes := flag.Int("nodes", 3, "number of nodes")
	dir := flag.String("dir", "", "where to write the client key and known_hosts (default: a new directory under $XDG_RUNTIME_DIR or the temp dir)")
	hold := flag.Duration("hold", 0, "remove the cluster after this long (0: keep it until interrupted)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*nodes, *dir, *hold, log); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		os.Exit(1)
	}
}

func run(nodes int, dir string, hold time.Duration, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	start := time.Now()
	c, err := testenv.Start(ctx, testenv.Options{Nodes: nodes, Logf: func(f string, a ...any) { log.Info(fmt.Sprintf(f, a...)) }})
	if c != nil {
		defer func() {
			if err := c.Close(); err != nil {
				log.Error("removing the cluster", "err", err)
			} else {
				log.Info("cluster removed", "name", c.Name)
			}
		}()
	}
	if err != nil {
		return err
	}
	log.Info("cluster ready", "name", c.Name, "nodes", nodes, "took", time.Since(start).Round(time.Millisecond))

	if dir == "" {
		if dir, err = os.MkdirTemp(os.Getenv("XDG_RUNTIME_DIR"), "raydeploy-sandbox-"); err != nil {
			return err
		}
	}
	key := filepath.Join(dir, "id_ed25519")
	known := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(key, c.ClientKeyPEM, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(known, c.KnownHosts(), 0o600); err != nil {
		return err
	}
	fmt.Printf("cluster %s: %d nodes (user %q has password sudo; root takes the key too)\n", c.Name, nodes, testenv.DeployUser)
	for _, n := range c.Nodes {
		fmt.Printf("  %-6s ssh -i %s -o UserKnownHostsFile=%s %s@%s\n", n.Name, key, known, testenv.DeployUser, n.Address)
	}
	if hold > 0 {
		fmt.Printf("removing it in %s (Ctrl-C removes it now)\n", hold)
		select {
		case <-ctx.Done():
		case <-time.After(hold):
		}
		return nil
	}
	fmt.Println("Ctrl-C removes it.")
	<-ctx.Done()
	return nil
}
