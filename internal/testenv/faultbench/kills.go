package main

import (
	"context"
	"math/rand/v2"
	"strings"
	"time"
)

// killOutcome is what one kill point gave.
type killOutcome struct {
	K, Of      int    // killed after progress line K of Of (a clean deploy's count)
	Cold       bool   // the Ray image was removed from every node first (the kill may hit its side-load)
	LastLine   string // the line it was killed after
	Checkpoint string // the checkpoint under way at the kill
	Finished   bool   // the deploy ended before line K (the point was not reached)
	// Locked is the re-run's lock refusal, if it was refused.
	Locked    string
	Rerun     result
	Recover   time.Duration // the re-run's wall time
	Verdict   verdict
	Converged bool
}

// killPoints draws n kill points in [1, lines-1] from seed: the same seed
// and clean-deploy line count give the same points.
func killPoints(seed uint64, n, lines int) []int {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	ks := make([]int, n)
	for i := range ks {
		ks[i] = 1 + r.IntN(max(1, lines-1))
	}
	return ks
}

// killAt deploys from scratch (cold: without the Ray image on the nodes),
// SIGKILLs deploy-master right after its k-th progress line, and re-runs it
// at once with --resume.
func (b *Bench) killAt(ctx context.Context, k int, cold bool) (killOutcome, error) {
	o := killOutcome{K: k, Of: b.lines, Cold: cold}
	if err := b.reset(ctx); err != nil {
		return o, err
	}
	if cold {
		for _, n := range b.env.Nodes {
			if _, err := n.Run(ctx, "root", "docker rmi -f "+b.rayImage); err != nil {
				return o, err
			}
		}
	}
	p, err := b.start(ctx, "--deploy", "--auto-approve")
	if err != nil {
		return o, err
	}
	hit, err := p.waitLine(ctx, func(n int, line string) bool {
		if cp, ok := strings.CutPrefix(line, "▶ "); ok {
			o.Checkpoint = cp
		}
		return n >= k
	})
	if err != nil {
		_ = p.kill()
		p.wait()
		return o, err
	}
	if hit {
		_ = p.kill()
		o.LastLine = p.read[len(p.read)-1]
	}
	if r := p.wait(); r.Code == 0 && !hit {
		o.Finished = true
	}
	audit := b.auditRecords()
	r, v, err := b.converge(ctx, audit)
	if err != nil {
		return o, err
	}
	o.Rerun, o.Recover, o.Verdict = r, r.Elapsed, v
	if strings.Contains(r.Stderr, "locked by") {
		o.Locked = r.errorText()
	}
	o.Converged = r.Code == 0 && v.ok()
	return o, nil
}
