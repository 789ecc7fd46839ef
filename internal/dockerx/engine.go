package dockerx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/raydeploy/sdk/internal/fence"
)

// DialFunc opens a connection to the Engine's API socket. The address it is
// given is meaningless when the dialer always reaches one socket (the usual
// case: the node's /var/run/docker.sock through SSH).
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// ErrNotFound reports that a container or image does not exist.
var ErrNotFound = errors.New("not found")

// Engine is one node's Docker Engine.
type Engine struct {
	node string
	cli  *client.Client
	log  *slog.Logger
}

// Options configure an Engine.
type Options struct {
	// Node names the node in errors and logs.
	Node string
	// Dial reaches the Engine's API socket. Nil means the local Engine
	// (DOCKER_HOST or /var/run/docker.sock): the controller's own.
	Dial DialFunc
	// Logger receives debug lines; nil discards them.
	Logger *slog.Logger
}

// New returns a client of the Engine that opts.Dial reaches. It negotiates the
// API version with the Engine on first use, so old Engines work too.
func New(opts Options) (*Engine, error) {
	copts := []client.Opt{client.WithAPIVersionNegotiation()}
	if opts.Dial != nil {
		// WithHost first: it replaces the dialer, WithDialContext then sets ours.
		copts = append(copts, client.WithHost("unix:///var/run/docker.sock"), client.WithDialContext(opts.Dial))
	} else {
		copts = append(copts, client.FromEnv)
	}
	cli, err := client.NewClientWithOpts(copts...)
	if err != nil {
		return nil, fmt.Errorf("docker client for %s: %w", opts.Node, err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{node: opts.Node, cli: cli, log: log.With("node", opts.Node)}, nil
}

// Close releases the client's idle connections.
func (e *Engine) Close() error { return e.cli.Close() }

// Node is the node name the Engine was made for.
func (e *Engine) Node() string { return e.node }

// Ping checks that the Engine answers and returns its API version.
func (e *Engine) Ping(ctx context.Context) (string, error) {
	p, err := e.cli.Ping(ctx)
	if err != nil {
		return "", fmt.Errorf("docker ping on %s: %w", e.node, err)
	}
	return p.APIVersion, nil
}

// Version is the Engine's version and operating system facts.
type Version struct {
	// Version is the Engine's release, e.g. "27.3.1".
	Version string
	// APIVersion is the newest Engine API version it speaks, e.g. "1.47".
	APIVersion string
	// OS is the operating system the Engine runs on, e.g. "linux".
	OS string
	// Arch is its CPU architecture, e.g. "amd64".
	Arch string
}

// ServerVersion returns the Engine's version.
func (e *Engine) ServerVersion(ctx context.Context) (Version, error) {
	v, err := e.cli.ServerVersion(ctx)
	if err != nil {
		return Version{}, fmt.Errorf("docker version on %s: %w", e.node, err)
	}
	return Version{Version: v.Version, APIVersion: v.APIVersion, OS: v.Os, Arch: v.Arch}, nil
}

// Container is a container as listed by the Engine.
type Container struct {
	// ID is the container's full ID.
	ID string
	// Name is the container's name without the leading "/".
	Name  string
	Image string // the reference it was created from
	State string // running, exited, created, ...
	// Labels are the container's labels.
	Labels map[string]string
}

// ListFilter selects containers: all of them when empty.
type ListFilter struct {
	// Labels are "key" or "key=value" filters, all of which must match.
	Labels []string
	// Names match container names (substring match, as the Engine does).
	Names []string
	// Ancestors match the image a container was created from.
	Ancestors []string
}

// List lists containers, running or not, that match f.
func (e *Engine) List(ctx context.Context, f ListFilter) ([]Container, error) {
	args := filters.NewArgs()
	for _, l := range f.Labels {
		args.Add("label", l)
	}
	for _, n := range f.Names {
		args.Add("name", n)
	}
	for _, a := range f.Ancestors {
		args.Add("ancestor", a)
	}
	list, err := e.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
	if err != nil {
		return nil, fmt.Errorf("list containers on %s: %w", e.node, err)
	}
	out := make([]Container, 0, len(list))
	for _, c := range list {
		name := ""
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		out = append(out, Container{ID: c.ID, Name: name, Image: c.Image, State: c.State, Labels: c.Labels})
	}
	return out, nil
}

// Remove force-removes a container (stopping it first) with its anonymous
// volumes. A container that is already gone is not an error.
func (e *Engine) Remove(ctx context.Context, id string) error {
	if err := fence.Check(ctx); err != nil {
		return err
	}
	err := e.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !client.IsErrNotFound(err) {
		return fmt.Errorf("remove container %s on %s: %w", id, e.node, err)
	}
	return nil
}

// ExecResult is the outcome of a command run in a container.
type ExecResult struct {
	// Stdout and Stderr are the command's whole output on each stream.
	Stdout, Stderr []byte
	// ExitCode is the command's exit status.
	ExitCode int
}

// Exec runs cmd in a running container and waits for it.
func (e *Engine) Exec(ctx context.Context, containerID string, cmd []string) (ExecResult, error) {
	if err := fence.Check(ctx); err != nil {
		return ExecResult{}, err
	}
	created, err := e.cli.ContainerExecCreate(ctx, containerID, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec in %s on %s: %w", containerID, e.node, err)
	}
	att, err := e.cli.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec attach in %s on %s: %w", containerID, e.node, err)
	}
	defer att.Close()
	var stdout, stderr strings.Builder
	if _, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader); err != nil && !errors.Is(err, io.EOF) {
		return ExecResult{}, fmt.Errorf("exec output in %s on %s: %w", containerID, e.node, err)
	}
	ins, err := e.cli.ContainerExecInspect(ctx, created.ID)
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec inspect in %s on %s: %w", containerID, e.node, err)
	}
	return ExecResult{Stdout: []byte(stdout.String()), Stderr: []byte(stderr.String()), ExitCode: ins.ExitCode}, nil
}

// Logs returns the last lines of a container's output.
func (e *Engine) Logs(ctx context.Context, id string, tail int) (string, error) {
	rc, err := e.cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: fmt.Sprint(tail)})
	if err != nil {
		return "", fmt.Errorf("logs of %s on %s: %w", id, e.node, err)
	}
	defer rc.Close()
	var b strings.Builder
	_, _ = stdcopy.StdCopy(&b, &b, rc)
	return b.String(), nil
}

// RunOnce runs cmd in a new container of image (no network, removed
// afterwards) and returns its combined output and exit code. Version checks
// use it to ask an image what it contains before anything starts. The
// container carries the cluster's label and the role "probe"; probes of the
// cluster left behind by a run that was killed are removed first.
func (e *Engine) RunOnce(ctx context.Context, cluster, image string, cmd []string) (string, int, error) {
	if err := fence.Check(ctx); err != nil {
		return "", 0, err
	}
	if cluster == "" {
		return "", 0, fmt.Errorf("run %v in %s on %s: no cluster name for the probe's label", cmd, image, e.node)
	}
	left, err := e.List(ctx, ListFilter{Labels: []string{LabelCluster + "=" + cluster, LabelRole + "=probe"}})
	if err != nil {
		return "", 0, err
	}
	for _, c := range left {
		if err := e.Remove(ctx, c.ID); err != nil {
			return "", 0, err
		}
	}
	created, err := e.cli.ContainerCreate(ctx,
		&container.Config{Image: image, Cmd: cmd, Entrypoint: []string{}, Labels: map[string]string{LabelCluster: cluster, LabelRole: "probe"}},
		&container.HostConfig{NetworkMode: "none"}, nil, nil, "")
	if err != nil {
		return "", 0, fmt.Errorf("run %v in %s on %s: %w", cmd, image, e.node, err)
	}
	defer func() {
		rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = e.cli.ContainerRemove(rmCtx, created.ID, container.RemoveOptions{Force: true})
	}()
	waitC, errC := e.cli.ContainerWait(ctx, created.ID, container.WaitConditionNextExit)
	if err := e.cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return "", 0, fmt.Errorf("run %v in %s on %s: start: %w", cmd, image, e.node, err)
	}
	var code int
	select {
	case res := <-waitC:
		code = int(res.StatusCode)
	case err := <-errC:
		return "", 0, fmt.Errorf("run %v in %s on %s: wait: %w", cmd, image, e.node, err)
	}
	out, err := e.Logs(ctx, created.ID, 200)
	return out, code, err
}
