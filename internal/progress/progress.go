package progress

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"
)

// PlainInterval is how often a plain (not terminal) Printer prints a line for
// one key while updates keep coming.
const PlainInterval = 4 * time.Second

// Printer shows progress lines keyed by what they are about ("build",
// "side-load node1"). It is safe for concurrent use.
type Printer struct {
	mu      sync.Mutex
	w       io.Writer
	width   int // terminal width; 0: not a terminal
	now     func() time.Time
	live    map[string]string
	order   []string
	printed map[string]time.Time
	drawn   bool
}

// New returns a Printer writing to w. width is the terminal's width in
// columns when w is a terminal, 0 when it is not.
func New(w io.Writer, width int) *Printer {
	return &Printer{w: w, width: width, now: time.Now, live: map[string]string{}, printed: map[string]time.Time{}}
}

// Update sets the progress text of key. On a terminal the live line shows
// every key's latest text; otherwise the text is printed as a line when key
// has not been printed for PlainInterval.
func (p *Printer) Update(key, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.live[key]; !ok {
		p.order = append(p.order, key)
	}
	p.live[key] = text
	if p.width > 0 {
		p.draw()
		return
	}
	if last, ok := p.printed[key]; ok && p.now().Sub(last) < PlainInterval {
		return
	}
	p.printed[key] = p.now()
	fmt.Fprintln(p.w, text)
}

// Done ends key's progress: it leaves the live line and, when text is not
// empty, text is printed as a line of its own.
func (p *Printer) Done(key, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.live, key)
	delete(p.printed, key)
	for i, k := range p.order {
		if k == key {
			p.order = append(p.order[:i], p.order[i+1:]...)
			break
		}
	}
	p.println(text)
}

// Println prints text as a line of its own, above the live line.
func (p *Printer) Println(text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.println(text)
}

// Writer returns an io.Writer whose lines go through Println, for output
// that must not tear the live line (a logger's).
func (p *Printer) Writer() io.Writer { return lineWriter{p} }

func (p *Printer) println(text string) {
	if p.width > 0 && p.drawn {
		io.WriteString(p.w, "\r\x1b[K")
		p.drawn = false
	}
	if text != "" {
		fmt.Fprintln(p.w, strings.TrimRight(text, "\n"))
	}
	if p.width > 0 {
		p.draw()
	}
}

// draw rewrites the live line (terminal only).
func (p *Printer) draw() {
	parts := make([]string, 0, len(p.order))
	for _, k := range p.order {
		parts = append(parts, p.live[k])
	}
	line := strings.Join(parts, " | ")
	if n := p.width - 1; utf8.RuneCountInString(line) > n && n > 0 {
		line = string([]rune(line)[:n])
	}
	io.WriteString(p.w, "\r\x1b[K"+line)
	p.drawn = line != ""
}

type lineWriter struct{ p *Printer }

func (l lineWriter) Write(b []byte) (int, error) {
	l.p.Println(string(b))
	return len(b), nil
}

// Bytes formats a byte count for people: 1.5 MiB.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Transfer formats a transfer's progress: "120.0 MiB of 300.0 MiB, 12.0
// MiB/s, 10s". total may be 0 (unknown).
func Transfer(done, total int64, elapsed time.Duration) string {
	var b strings.Builder
	b.WriteString(Bytes(done))
	if total > 0 {
		fmt.Fprintf(&b, " of %s", Bytes(total))
	}
	if s := elapsed.Seconds(); s > 0 {
		fmt.Fprintf(&b, ", %s/s", Bytes(int64(float64(done)/s)))
	}
	fmt.Fprintf(&b, ", %s", elapsed.Round(time.Second))
	return b.String()
}

// Transfer shows a transfer under key: a live "label: 120.0 MiB of 300.0 MiB,
// 12.0 MiB/s, 10s" while it runs, and once done a line saying how it ended.
func (p *Printer) Transfer(key, label string, sent, total int64, elapsed time.Duration, done bool, err error) {
	switch {
	case !done:
		p.Update(key, label+": "+Transfer(sent, total, elapsed))
	case err != nil:
		p.Done(key, label+": failed after "+Transfer(sent, total, elapsed)+": "+err.Error())
	default:
		p.Done(key, label+": done, "+Transfer(sent, total, elapsed))
	}
}

// Terminal returns the width of f's terminal, or 0 when f is not one.
func Terminal(f *os.File) int {
	if !term.IsTerminal(int(f.Fd())) {
		return 0
	}
	w, _, err := term.GetSize(int(f.Fd()))
	if err != nil || w <= 0 {
		return 80
	}
	return w
}

// Every calls fn every interval, on a goroutine of its own, until stop is
// called or ctx ends. stop waits until a running fn has returned.
func Every(ctx context.Context, interval time.Duration, fn func(now time.Time)) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case now := <-t.C:
				fn(now)
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done) }); <-finished }
}
