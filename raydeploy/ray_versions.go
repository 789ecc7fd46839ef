package raydeploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/raydeploy/sdk/internal/dockerx"
	"github.com/raydeploy/sdk/internal/fanout"
)

// checkVersions asks each distinct image ID on the nodes for its Ray and
// Python versions and refuses to go on unless they are the same everywhere.
func (d *Deployer) checkVersions(ctx context.Context, nodes []Node, skip map[string]error) (string, error) {
	image := d.cluster.Ray.Image
	ids, err := fanMap(ctx, d, nodes, fanout.Options{Concurrency: d.opts.Concurrency, Op: "image"}, func(ctx context.Context, n Node) (string, error) {
		if skip[n.ID()] != nil {
			return "", nil
		}
		e, err := d.conn.docker(ctx, n)
		if err != nil {
			return "", err
		}
		id, err := e.ImageID(ctx, image)
		if errors.Is(err, dockerx.ErrNotFound) {
			return "", nil
		}
		return id, err
	})
	if err != nil && len(ids) == 0 {
		return "", err
	}
	byID := map[string][]string{}
	holders := map[string][]Node{}
	for _, n := range nodes {
		if id := ids[n.ID()]; id != "" {
			byID[id] = append(byID[id], n.ID())
			holders[id] = append(holders[id], n)
		}
	}
	versions := map[string]string{}
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		// One probe per image ID. A node whose probe fails (lost, its
		// Engine gone) fails alone, in skip, and the next node holding the
		// same image is probed: one node's fault does not fail the others.
		for _, n := range holders[id] {
			v, err := d.imageVersions(ctx, n, image, id)
			if err == nil {
				versions[id] = v
				break
			}
			if ctx.Err() != nil || skip == nil {
				return "", err
			}
			skip[n.ID()] = d.conn.explain(ctx, n, err)
		}
		byID[id] = slices.DeleteFunc(byID[id], func(name string) bool { return skip[name] != nil })
	}
	distinct := map[string][]string{}
	for id, v := range versions {
		distinct[v] = append(distinct[v], byID[id]...)
	}
	if len(distinct) > 1 {
		var parts []string
		for _, v := range slices.Sorted(maps.Keys(distinct)) {
			ns := distinct[v]
			slices.Sort(ns)
			parts = append(parts, fmt.Sprintf("%s on %s", v, strings.Join(ns, ", ")))
		}
		return "", &VersionMismatchError{Image: image, Detail: strings.Join(parts, "; ")}
	}
	for v := range distinct {
		return v, nil
	}
	return "", nil
}

// VersionMismatchError reports nodes whose Ray image carries another Ray or
// Python version than the others: Ray refuses to mix them, so nothing starts.
type VersionMismatchError struct {
	// Image is the configured Ray image reference.
	Image string
	// Detail lists each version found and its nodes: "<versions> on n1, n2; ...".
	Detail string
}

// Error says which versions are on which nodes and how to make them agree.
func (e *VersionMismatchError) Error() string {
	return fmt.Sprintf("Ray and Python versions differ between nodes for image %s: %s; make every node hold the same image (docker rmi it on the odd nodes and re-run)", e.Image, e.Detail)
}

// imageVersions runs `ray --version` and `python --version` in the image,
// once per image ID for the Deployer's life.
func (d *Deployer) imageVersions(ctx context.Context, n Node, image, id string) (string, error) {
	d.mu.Lock()
	if d.versions == nil {
		d.versions = map[string]string{}
	}
	v, ok := d.versions[id]
	d.mu.Unlock()
	if ok {
		return v, nil
	}
	e, err := d.conn.docker(ctx, n)
	if err != nil {
		return "", err
	}
	out, code, err := e.RunOnce(ctx, d.cluster.Name, id, []string{"sh", "-c", "ray --version; python --version 2>&1 || python3 --version 2>&1"})
	if err != nil {
		return "", nodeErr(n, "version check", err)
	}
	if code != 0 {
		return "", nodeErr(n, "version check", fmt.Errorf("ray --version in %s exited %d: %s", image, code, strings.TrimSpace(out)))
	}
	var ray, py string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "ray, version "); ok {
			ray = strings.Fields(rest)[0]
		}
		if rest, ok := strings.CutPrefix(line, "Python "); ok {
			py = rest
		}
	}
	if ray == "" || py == "" {
		return "", nodeErr(n, "version check", fmt.Errorf("could not read Ray and Python versions from %s: %q", image, out))
	}
	v = "Ray " + ray + ", Python " + py
	d.mu.Lock()
	d.versions[id] = v
	d.mu.Unlock()
	return v, nil
}
