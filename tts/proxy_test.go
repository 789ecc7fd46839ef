package tts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestStreamsThroughServeProxyWhileScaling runs many long streams at once
// through the Ray stand-in's Serve proxy while the deployment scales up and
// down: every stream must arrive whole (a replica that goes away drains its
// requests first, as Serve's do), and every request must be answered.
func TestStreamsThroughServeProxyWhileScaling(t *testing.T) {
	d := standinHead(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	port := freePort(t)
	svc := Service{HTTPPort: port, Autoscaling: Autoscaling{MinReplicas: 1, MaxReplicas: 3}, MaxConcurrency: 2}
	deploy := func(min int) {
		t.Helper()
		svc.Autoscaling.MinReplicas = min
		p, err := svc.Plan(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Deploy(ctx, d, p); err != nil {
			t.Fatal(err)
		}
	}
	deploy(1)
	c, err := NewClient(ClientConfig{BaseURL: fmt.Sprintf("http://127.0.0.1:%d", port)})
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Repeat("This long text keeps the stream open for a while, sentence after sentence. ", 3)
	words := wordCount(text)

	const clients, each = 6, 2
	var wg sync.WaitGroup
	errs := make(chan error, clients*each)
	started := make(chan struct{}, clients*each)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				err := func() error {
					s, err := c.Stream(ctx, Request{Text: text, OutputFormat: "pcm"})
					if err != nil {
						return err
					}
					defer s.Close()
					started <- struct{}{}
					pcm, err := io.ReadAll(s)
					if err != nil {
						return fmt.Errorf("after %d bytes: %w", len(pcm), err)
					}
					_, err = CheckSpeech(Audio{Format: s.Format, Samples: decodePCM(pcm)}, words)
					return err
				}()
				if err != nil {
					errs <- fmt.Errorf("client %d stream %d: %w", i, j, err)
				}
			}
		}()
	}
	// Scale while streams are open: up to 3 replicas, then down to 1.
	for _, n := range []int{3, 1} {
		select {
		case <-started:
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
		deploy(n)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			t.Log("a stream ended early")
		}
	}
}
