package tts

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// benchSentence has 20 words.
const benchSentence = "Our service reads any text aloud with clear voices, and it answers quickly even when many people use it together."

func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1)+0.5)]
}

// BenchmarkTTS measures the service deployed on the Ray stand-in's Serve
// (through its proxy, like a user): per voice the p50/p99 latency and
// real-time factor of a 20-word sentence and the streaming time to first
// byte, with the engine run directly as the baseline; then requests/s of the
// default voice under 16 concurrent clients with 1 and 2 replicas. Run:
//
//	go test -run '^$' -bench BenchmarkTTS -benchtime 1x ./tts/
func BenchmarkTTS(b *testing.B) {
	if n := len(strings.Fields(benchSentence)); n != 20 {
		b.Fatalf("bench sentence has %d words", n)
	}
	d := standinHead(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	port := freePort(b)
	deploy := func(replicas int) *Client {
		svc := Service{HTTPPort: port, Autoscaling: Autoscaling{MinReplicas: replicas, MaxReplicas: replicas}, MaxConcurrency: 2}
		p, err := svc.Plan(ctx, d)
		if err != nil {
			b.Fatal(err)
		}
		if err := svc.Deploy(ctx, d, p); err != nil {
			b.Fatal(err)
		}
		c, err := NewClient(ClientConfig{BaseURL: fmt.Sprintf("http://127.0.0.1:%d", port)})
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	c := deploy(1)
	const rounds = 20
	for b.Loop() {
		b.Logf("%-17s %9s %9s %9s %8s %12s %10s", "voice", "p50", "p99", "ttfb p50", "RTF", "engine p50", "ratio")
		for _, voice := range []string{"slt", "rms", "awb", "kal16", "espeak-en-us", "festival-slt-hts"} {
			var lat, ttfb, engine []time.Duration
			var rtf []float64
			for range rounds {
				start := time.Now()
				res, err := c.Synthesize(ctx, Request{Text: benchSentence, VoiceID: voice})
				if err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
				rtf = append(rtf, res.ProcessingTime/res.Duration)
				start = time.Now()
				s, err := c.Stream(ctx, Request{Text: benchSentence, VoiceID: voice, OutputFormat: "pcm"})
				if err != nil {
					b.Fatal(err)
				}
				one := make([]byte, 2)
				if _, err := io.ReadFull(s, one); err != nil {
					b.Errorf("%s: stream: %v", voice, err) // reported, the figures still print
					s.Close()
					continue
				}
				ttfb = append(ttfb, time.Since(start))
				if _, err := io.Copy(io.Discard, s); err != nil {
					b.Errorf("%s: stream: %v", voice, err)
				}
				s.Close()
				if cmd := engineCommand(voice); cmd != nil {
					start = time.Now()
					if out, err := cmd.CombinedOutput(); err != nil {
						b.Fatalf("%v: %v %s", cmd.Args, err, out)
					}
					engine = append(engine, time.Since(start))
				}
			}
			slices.Sort(rtf)
			eng, ratio := "-", "-"
			if len(engine) > 0 {
				e := quantile(engine, 0.5)
				eng, ratio = e.Round(time.Millisecond).String(), fmt.Sprintf("%.2f", float64(quantile(lat, 0.5))/float64(e))
			}
			b.Logf("%-17s %9s %9s %9s %8.3f %12s %10s", voice, quantile(lat, 0.5).Round(time.Millisecond), quantile(lat, 0.99).Round(time.Millisecond),
				quantile(ttfb, 0.5).Round(time.Millisecond), rtf[len(rtf)/2], eng, ratio)
			if voice == "slt" {
				b.ReportMetric(float64(quantile(lat, 0.5).Milliseconds()), "slt-p50-ms")
				b.ReportMetric(float64(quantile(ttfb, 0.5).Milliseconds()), "slt-ttfb-ms")
				b.ReportMetric(rtf[len(rtf)/2], "slt-rtf")
			}
		}
		rps := map[int]float64{}
		for _, replicas := range []int{1, 2} {
			c := deploy(replicas)
			const clients, total = 16, 96
			var wg sync.WaitGroup
			work := make(chan struct{}, total)
			for range total {
				work <- struct{}{}
			}
			close(work)
			errs := make(chan error, total)
			start := time.Now()
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range work {
						if _, err := c.Synthesize(ctx, Request{Text: benchSentence}); err != nil {
							errs <- err
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			rps[replicas] = total / time.Since(start).Seconds()
			b.Logf("%d replica(s), %d clients: %.1f requests/s", replicas, clients, rps[replicas])
		}
		b.Logf("2 replicas / 1 replica: %.2f", rps[2]/rps[1])
		b.ReportMetric(rps[1], "rps-1-replica")
		b.ReportMetric(rps[2], "rps-2-replicas")
	}
}

// engineCommand runs the voice's engine directly (the baseline), or nil.
func engineCommand(voice string) *exec.Cmd {
	switch {
	case voice == "festival-slt-hts":
		cmd := exec.Command("text2wave", "-eval", "(voice_cmu_us_slt_arctic_hts)", "-o", "/dev/null")
		cmd.Stdin = strings.NewReader(benchSentence)
		return cmd
	case strings.HasPrefix(voice, "espeak-"):
		return exec.Command("espeak-ng", "--stdout", "-v", strings.TrimPrefix(voice, "espeak-"), benchSentence)
	default:
		return exec.Command("flite", "-voice", voice, "-t", benchSentence, "-o", "/dev/null")
	}
}
