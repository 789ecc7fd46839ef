package sshx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"regexp"
	"time"

	"github.com/raydeploy/sdk/internal/fence"
)

var ownerPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*(:[A-Za-z0-9_][A-Za-z0-9._-]*)?$`)

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Upload streams r to the file dst on the node with the given mode and
// owner ("user" or "user:group"; empty keeps the login user). The file is
// written under a temporary name in dst's directory and renamed over dst
// only after every byte arrived, so dst is either the old or the complete
// new file, never a partial one. A non-root login uses sudo when owner is
// set or WithSudo is given.
func (c *Conn) Upload(ctx context.Context, r io.Reader, dst string, mode os.FileMode, owner string, opts ...RunOption) error {
	if err := fence.Check(ctx); err != nil {
		return err
	}
	if !path.IsAbs(dst) {
		return fmt.Errorf("sshx: upload to %s: destination %q must be an absolute path", c.addr, dst)
	}
	if owner != "" && !ownerPattern.MatchString(owner) {
		return fmt.Errorf("sshx: upload to %s: invalid owner %q", c.addr, owner)
	}
	var o runOptions
	for _, opt := range opts {
		opt(&o)
	}
	var extra []RunOption
	if o.sudo || (owner != "" && c.cfg.User != "root") {
		extra = append(extra, WithSudo())
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return err
	}
	dir, base := path.Split(dst)
	tmp := path.Join(dir, "."+base+".raydeploy-"+hex.EncodeToString(rnd[:]))
	qtmp, qdst := Quote(tmp), Quote(dst)

	start := time.Now()
	cr := &countingReader{r: r}
	write := append([]RunOption{WithStdin(cr), WithDisplay("upload to " + tmp), withKillFirst()}, extra...)
	if _, err := c.Run(ctx, "umask 077 && cat > "+qtmp, write...); err != nil {
		c.removeTemp(ctx, qtmp, extra)
		return fmt.Errorf("sshx: upload to %s:%s: %w", c.addr, dst, err)
	}
	if err := ctx.Err(); err != nil {
		c.removeTemp(ctx, qtmp, extra)
		return fmt.Errorf("sshx: upload to %s:%s: %w", c.addr, dst, err)
	}
	finish := fmt.Sprintf("chmod %04o %s", mode.Perm(), qtmp)
	if owner != "" {
		finish += " && chown " + Quote(owner) + " " + qtmp
	}
	finish += " && mv -f " + qtmp + " " + qdst + " || { rc=$?; rm -f " + qtmp + "; exit $rc; }"
	if _, err := c.Run(ctx, finish, append([]RunOption{WithDisplay("install " + dst)}, extra...)...); err != nil {
		c.removeTemp(ctx, qtmp, extra)
		return fmt.Errorf("sshx: upload to %s:%s: %w", c.addr, dst, err)
	}
	c.log.DebugContext(ctx, "ssh upload", slog.String("dst", dst), slog.Int64("bytes", cr.n),
		slog.Duration("took", time.Since(start)))
	return nil
}

// removeTemp deletes a temporary upload file, best effort, even when ctx
// was cancelled.
func (c *Conn) removeTemp(ctx context.Context, qtmp string, opts []RunOption) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, _ = c.Run(ctx, "rm -f "+qtmp, opts...)
}
