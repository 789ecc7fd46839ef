package dockerx

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/raydeploy/sdk/internal/fence"
)

// ImageID returns the ID (sha256 of the image config) of ref on the Engine,
// or ErrNotFound.
func (e *Engine) ImageID(ctx context.Context, ref string) (string, error) {
	img, err := e.cli.ImageInspect(ctx, ref)
	if err != nil {
		if client.IsErrNotFound(err) {
			return "", fmt.Errorf("image %s on %s: %w", ref, e.node, ErrNotFound)
		}
		return "", fmt.Errorf("inspect image %s on %s: %w", ref, e.node, err)
	}
	return img.ID, nil
}

// Pull pulls ref from its registry, reporting progress lines to progress
// (which may be nil).
func (e *Engine) Pull(ctx context.Context, ref string, progress func(status string)) error {
	if err := fence.Check(ctx); err != nil {
		return err
	}
	rc, err := e.cli.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return fmt.Errorf("pull %s on %s: %w", ref, e.node, err)
	}
	defer rc.Close()
	return readJSONMessages(rc, progress, fmt.Sprintf("pull %s on %s", ref, e.node))
}

// Save streams the images (docker save format) from the Engine.
func (e *Engine) Save(ctx context.Context, refs ...string) (io.ReadCloser, error) {
	rc, err := e.cli.ImageSave(ctx, refs)
	if err != nil {
		return nil, fmt.Errorf("save %v on %s: %w", refs, e.node, err)
	}
	return rc, nil
}

// Load loads a docker save stream into the Engine.
func (e *Engine) Load(ctx context.Context, r io.Reader) error {
	if err := fence.Check(ctx); err != nil {
		return err
	}
	resp, err := e.cli.ImageLoad(ctx, r, client.ImageLoadWithQuiet(true))
	if err != nil {
		return fmt.Errorf("load image on %s: %w", e.node, err)
	}
	defer resp.Body.Close()
	return readJSONMessages(resp.Body, nil, "load image on "+e.node)
}

// jsonMessage is the part of the Engine's progress stream that we read.
type jsonMessage struct {
	Status      string `json:"status"`
	Stream      string `json:"stream"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
	Error string `json:"error"`
}

// readJSONMessages drains a progress stream and turns an error message in it
// into an error: the Engine reports failures of pull and load there, after a
// 200 status.
func readJSONMessages(r io.Reader, progress func(string), what string) error {
	dec := json.NewDecoder(bufio.NewReader(r))
	for {
		var m jsonMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("%s: reading progress: %w", what, err)
		}
		if m.Error != "" || m.ErrorDetail != nil {
			msg := m.Error
			if msg == "" {
				msg = m.ErrorDetail.Message
			}
			return fmt.Errorf("%s: %s", what, msg)
		}
		if progress != nil && (m.Status != "" || m.Stream != "") {
			progress(m.Status + m.Stream)
		}
	}
}

// ErrDigestMismatch reports that a side-loaded image arrived with another ID
// than the source's.
var ErrDigestMismatch = errors.New("image digest mismatch after load")

// SideLoadProgress is called with the bytes sent so far to one node.
type SideLoadProgress func(node string, sent int64)

// SideLoad copies the image ref from the tar file at path (docker save
// format) into dst and checks that dst then has the image with ID wantID.
// Air-gapped sites need no registry: the bytes travel over the node's SSH
// connection. Layers the node already has are not sent (see SideLoadWith).
func SideLoad(ctx context.Context, path, ref, wantID string, dst *Engine, progress SideLoadProgress) error {
	return SideLoadWith(ctx, path, ref, wantID, dst, SideLoadOptions{Progress: progress})
}

// SideLoadOptions tune SideLoadWith.
type SideLoadOptions struct {
	// Progress is called with the bytes sent so far; may be nil.
	Progress SideLoadProgress
	// Planned, when set, is called before the bytes go out with how many
	// will be sent and how many stay behind because the node has those
	// layers (again, with skipped 0, if the node refuses the shorter
	// archive and every layer is sent after all).
	Planned func(send, skipped int64)
}

// SideLoadWith is SideLoad with options. Images that derive from one base
// share its layers, so a node that has one of them (or any image built on
// the same layers) needs only the layers above: SideLoadWith asks the
// node's Engine which layer chains its images hold and leaves those layer
// files out of the archive it streams. The Engine's loader (graph-driver
// image store: overlay2, vfs, ...) finds such layers by chain ID and does
// not read them; with the containerd image store every layer is sent. Should
// the Engine refuse the shorter archive, every layer is sent. The image ID
// is checked either way.
func SideLoadWith(ctx context.Context, path, ref, wantID string, dst *Engine, o SideLoadOptions) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("side-load %s to %s: %w", ref, dst.node, err)
	}
	skip, skipped := dst.knownLayers(ctx, path, ref)
	if o.Planned != nil {
		o.Planned(max(fi.Size()-skipped, 0), skipped)
	}
	err = dst.loadArchive(ctx, path, skip, o.Progress)
	if err != nil && len(skip) > 0 && ctx.Err() == nil {
		dst.log.Warn("side-load without the layers the node has was refused; sending every layer", "image", ref, "err", err)
		if o.Planned != nil {
			o.Planned(fi.Size(), 0)
		}
		err = dst.loadArchive(ctx, path, nil, o.Progress)
	}
	if err != nil {
		return fmt.Errorf("side-load %s: %w", ref, err)
	}
	got, err := dst.ImageID(ctx, ref)
	if err != nil {
		return fmt.Errorf("side-load %s: %w", ref, err)
	}
	if got != wantID {
		return fmt.Errorf("side-load %s to %s: %w: want %s, node has %s", ref, dst.node, ErrDigestMismatch, wantID, got)
	}
	return nil
}

// knownLayers returns the layer entries of the archive that e need not
// receive and the bytes they take in it. Anything it cannot find out (an
// archive it does not understand, an Engine that does not answer) means
// sending everything.
func (e *Engine) knownLayers(ctx context.Context, file, ref string) (map[string]bool, int64) {
	graph, err := e.graphDriverStore(ctx)
	if err != nil || !graph {
		return nil, 0
	}
	a, err := readArchiveImage(file, ref)
	if err != nil {
		e.log.Debug("side-load: archive layers not read; sending every layer", "image", ref, "err", err)
		return nil, 0
	}
	have, err := e.layerChains(ctx)
	if err != nil {
		return nil, 0
	}
	skip := a.skippable(have)
	var n int64
	for name := range skip {
		n += tarEntryCost(a.sizes[name])
	}
	if len(skip) > 0 {
		e.log.Debug("side-load: leaving out layers the node has", "image", ref, "layers", len(skip), "of", len(a.entries), "bytes", n)
	}
	return skip, n
}

// loadArchive streams the archive at file, without the entries in skip, into
// e's Engine.
func (e *Engine) loadArchive(ctx context.Context, file string, skip map[string]bool, progress SideLoadProgress) error {
	var rc io.ReadCloser
	if len(skip) == 0 {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		rc = f
	} else {
		rc = filterArchive(file, skip)
	}
	defer rc.Close()
	var r io.Reader = rc
	if progress != nil {
		r = &countingReader{r: rc, fn: func(n int64) { progress(e.node, n) }}
	}
	return e.Load(ctx, r)
}

// SaveToFile saves ref from the Engine into a new file in dir and returns its
// path and the image ID. The caller removes the file.
func (e *Engine) SaveToFile(ctx context.Context, ref, dir string) (path, id string, err error) {
	if id, err = e.ImageID(ctx, ref); err != nil {
		return "", "", err
	}
	rc, err := e.Save(ctx, ref)
	if err != nil {
		return "", "", err
	}
	defer rc.Close()
	f, err := os.CreateTemp(dir, "raydeploy-image-*.tar")
	if err != nil {
		return "", "", fmt.Errorf("save %s: %w", ref, err)
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", "", fmt.Errorf("save %s on %s: %w", ref, e.node, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", "", err
	}
	return f.Name(), id, nil
}

// TarImageID reads the image ID of ref from a docker save tar (its
// manifest.json names the config blob, whose digest is the image ID).
func TarImageID(path, ref string) (string, error) {
	return tarImageID(path, ref)
}

type countingReader struct {
	r  io.Reader
	n  atomic.Int64
	fn func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.fn(c.n.Add(int64(n)))
	}
	return n, err
}
