package raydeploy

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/raydeploy/sdk/internal/progress"
)

// TransferProgress is one report of an image side-load to one node. It is
// delivered to Options.Progress from the goroutine of that node's transfer:
// reports of different nodes may arrive concurrently.
type TransferProgress struct {
	// Node is the node's ID.
	Node string
	// Image is the image being sent.
	Image string
	// Sent and Total are the bytes sent so far and the size of the image
	// archive.
	Sent, Total int64
	// Elapsed is the time since the transfer started.
	Elapsed time.Duration
	// Done is set on the last report, when the node has the image (Err nil)
	// or the transfer failed.
	Done bool
	// Err is why the transfer failed (with Done).
	Err error
}

// progressInterval is how often a transfer reports, also while it stalls.
const progressInterval = time.Second

// transferProgress reports a transfer to fn (and a debug log line every 5 s)
// every progressInterval until the returned finish is called with the
// outcome; sent is the counter the transfer updates.
func (d *Deployer) transferProgress(ctx context.Context, node, image string, total int64) (sent *atomic.Int64, finish func(error)) {
	sent = new(atomic.Int64)
	start := time.Now()
	report := func(done bool, err error) {
		p := TransferProgress{Node: node, Image: image, Sent: sent.Load(), Total: total, Elapsed: time.Since(start), Done: done, Err: err}
		if d.opts.Progress != nil {
			d.opts.Progress(p)
		}
	}
	lastLog := start
	stop := progress.Every(ctx, progressInterval, func(now time.Time) {
		report(false, nil)
		if now.Sub(lastLog) >= 5*time.Second {
			lastLog = now
			d.log.Info("side-loading image", "node", node, "image", image, "sent_bytes", sent.Load(), "total_bytes", total,
				"elapsed", now.Sub(start).Round(time.Second))
		}
	})
	return sent, func(err error) {
		stop()
		report(true, err)
	}
}
