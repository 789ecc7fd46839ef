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
// connection.
func SideLoad(ctx context.Context, path, ref, wantID string, dst *Engine, progress SideLoadProgress) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("side-load %s to %s: %w", ref, dst.node, err)
	}
	defer f.Close()
	var r io.Reader = f
	if progress != nil {
		r = &countingReader{r: f, fn: func(n int64) { progress(dst.node, n) }}
	}
	if err := dst.Load(ctx, r); err != nil {
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
