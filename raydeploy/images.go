package raydeploy

import (
	"context"
	"fmt"
	"os"

	"github.com/raydeploy/sdk/internal/dockerx"
)

func (d *Deployer) imageVerb() string {
	switch d.opts.Images {
	case ImagePull:
		return "pull"
	case ImageSideLoad:
		return "side-load"
	}
	return "side-load or pull"
}

// distributeImage gets image onto the nodes: side-loaded from the
// controller's Engine (or Options.ImageFile) over SSH, or pulled on the node.
func (d *Deployer) distributeImage(ctx context.Context, image string, nodes []Node) error {
	file, wantID, cleanup, err := d.controllerImage(ctx, image)
	if err != nil {
		return err
	}
	defer cleanup()
	var size int64
	if fi, err := os.Stat(file); err == nil {
		size = fi.Size()
	}
	if file != "" && d.opts.ImageRelay && len(nodes) > 1 {
		nodes = d.relayImage(ctx, file, image, wantID, nodes)
	}
	return d.fanout(ctx, nodes, "image", func(ctx context.Context, n Node) error {
		e, err := d.conn.docker(ctx, n)
		if err != nil {
			return err
		}
		if file == "" {
			return e.Pull(ctx, image, nil)
		}
		tr, finish := d.transferProgress(ctx, n.ID(), image, size)
		err = dockerx.SideLoadWith(ctx, file, image, wantID, e, dockerx.SideLoadOptions{
			Progress: func(_ string, n int64) { tr.sent.Store(n) },
			Planned:  tr.planned,
		})
		finish(err)
		return err
	})
}

// controllerImage returns a docker-save file of image and its ID when the
// image is to be side-loaded, or "" when nodes pull it.
func (d *Deployer) controllerImage(ctx context.Context, image string) (file, id string, cleanup func(), err error) {
	cleanup = func() {}
	if d.opts.Images == ImagePull {
		return "", "", cleanup, nil
	}
	if d.opts.ImageFile != "" {
		id, err := dockerx.TarImageID(d.opts.ImageFile, image)
		if err != nil {
			return "", "", cleanup, fmt.Errorf("image file %s: %w", d.opts.ImageFile, err)
		}
		return d.opts.ImageFile, id, cleanup, nil
	}
	local, err := dockerx.New(dockerx.Options{Node: "controller", Logger: d.log})
	if err != nil {
		return "", "", cleanup, err
	}
	defer local.Close()
	if _, err := local.Ping(ctx); err != nil || func() bool { _, err := local.ImageID(ctx, image); return err != nil }() {
		if d.opts.Images == ImageSideLoad {
			return "", "", cleanup, fmt.Errorf("side-load %s: the controller's Docker Engine does not have it (docker pull or docker load it there first)", image)
		}
		return "", "", cleanup, nil // auto: the nodes pull
	}
	dir, err := os.MkdirTemp("", "raydeploy-image-")
	if err != nil {
		return "", "", cleanup, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	file, id, err = local.SaveToFile(ctx, image, dir)
	if err != nil {
		cleanup()
		return "", "", func() {}, err
	}
	return file, id, cleanup, nil
}
