package progress

import (
	"strings"
	"testing"
	"time"
)

func TestPlainLinesAreThrottledPerKey(t *testing.T) {
	var out strings.Builder
	p := New(&out, 0)
	now := time.Unix(0, 0)
	p.now = func() time.Time { return now }
	p.Update("a", "a 1")
	p.Update("b", "b 1")
	now = now.Add(time.Second)
	p.Update("a", "a 2") // too soon for a
	now = now.Add(PlainInterval)
	p.Update("a", "a 3")
	p.Done("a", "a done")
	p.Println("other")
	want := "a 1\nb 1\na 3\na done\nother\n"
	if out.String() != want {
		t.Fatalf("plain output %q, want %q", out.String(), want)
	}
}

func TestTerminalKeepsOneLiveLine(t *testing.T) {
	var out strings.Builder
	p := New(&out, 20)
	p.Update("a", "a 1")
	p.Update("b", "b 1")
	p.Println("log line")
	p.Done("a", "")
	got := out.String()
	// Every draw clears the line first; permanent lines end in newlines and
	// the live line never does.
	want := "\r\x1b[Ka 1" + "\r\x1b[Ka 1 | b 1" + "\r\x1b[Klog line\n" + "\r\x1b[Ka 1 | b 1" + "\r\x1b[K" + "\r\x1b[Kb 1"
	if got != want {
		t.Fatalf("terminal output %q, want %q", got, want)
	}
	p.Update("b", strings.Repeat("x", 50))
	if last := out.String()[strings.LastIndex(out.String(), "\x1b[K")+3:]; len(last) != 19 {
		t.Fatalf("live line %q not cut to the width", last)
	}
}

func TestTransfer(t *testing.T) {
	if got := Transfer(120<<20, 300<<20, 10*time.Second); got != "120.0 MiB of 300.0 MiB, 12.0 MiB/s, 10s" {
		t.Fatalf("Transfer = %q", got)
	}
	if got := Transfer(512, 0, 0); got != "512 B, 0s" {
		t.Fatalf("Transfer = %q", got)
	}
}
