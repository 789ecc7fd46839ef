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
	// Sent and Total are the bytes sent so far and the bytes to send: the
	// image archive without the layers the node already has.
	Sent, Total int64
	// Skipped is the bytes of the archive not sent because the node has
	// those layers (images derived from one base share its layers).
	Skipped int64
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

// transfer is the state of one side-load that transferProgress reports.
type transfer struct {
	sent, total, skipped atomic.Int64
}

// planned records what the side-load will send and leave out.
func (t *transfer) planned(send, skipped int64) {
	t.total.Store(send)
	t.skipped.Store(skipped)
	t.sent.Store(0)
}

// transferProgress reports a transfer to fn (and a debug log line every 5 s)
// every progressInterval until the returned finish is called with the
// outcome; tr holds the counters the transfer updates.
func (d *Deployer) transferProgress(ctx context.Context, node, image string, total int64) (tr *transfer, finish func(error)) {
	tr = new(transfer)
	tr.total.Store(total)
	sent := &tr.sent
	start := time.Now()
	report := func(done bool, err error) {
		p := TransferProgress{Node: node, Image: image, Sent: sent.Load(), Total: tr.total.Load(), Skipped: tr.skipped.Load(),
			Elapsed: time.Since(start), Done: done, Err: err}
		if d.opts.Progress != nil {
			d.opts.Progress(p)
		}
	}
	lastLog := start
	stop := progress.Every(ctx, progressInterval, func(now time.Time) {
		report(false, nil)
		if now.Sub(lastLog) >= 5*time.Second {
			lastLog = now
			d.log.Info("side-loading image", "node", node, "image", image, "sent_bytes", sent.Load(), "total_bytes", tr.total.Load(),
				"elapsed", now.Sub(start).Round(time.Second))
		}
	})
	return tr, func(err error) {
		stop()
		report(true, err)
	}
}
