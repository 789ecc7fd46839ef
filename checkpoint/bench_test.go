package checkpoint

import (
	"context"
	"testing"

	"github.com/raydeploy/sdk/approval"
)

func BenchmarkStoreSave(b *testing.B) {
	s, err := OpenStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	l := versionedLedger(1)
	for b.Loop() {
		if err := s.Save(l); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRunAllSatisfied(b *testing.B) {
	rec := &recorder{}
	var cps []Checkpoint
	for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
		cps = append(cps, fake(rec, n, nil, nil))
	}
	l, _ := NewList(cps...)
	r, err := Open(context.Background(), l, Options{StateDir: b.TempDir(), Nodes: twoNodes, Approver: approval.NewAuto("bench", false)})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	for b.Loop() {
		if _, err := r.RunAll(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
