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
// byte, with the engine run directly as the baseline; the time to first byte
// of the app run directly (no proxy), and of it streaming whole sentences
// ("before": stream_first_words 0) with the ratio before/direct; then
// requests/s of the default voice under 16 concurrent clients with 1 and 2
// replicas. Run:
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
	// The same app run directly (no Serve proxy), and a baseline of it that
	// streams whole sentences (stream_first_words 0: what streaming did
	// before the first phrase was split off).
	direct, sentences := startApp(b), startApp(b, `{"stream_first_words":0}`)
	const rounds = 20
	for b.Loop() {
		b.Logf("%-17s %7s %7s %7s %7s %7s %7s %7s %11s %6s", "voice", "p50", "p99", "ttfb", "direct", "before", "before/", "RTF", "engine p50", "ratio")
		b.Logf("%-17s %7s %7s %7s %7s %7s %7s", "", "", "", "(proxy)", "", "", "direct")
		for _, voice := range []string{"slt", "rms", "awb", "kal16", "espeak-en-us", "festival-slt-hts"} {
			var lat, ttfb, ttfbDirect, ttfbBefore, engine []time.Duration
			var rtf []float64
			for range rounds {
				start := time.Now()
				res, err := c.Synthesize(ctx, Request{Text: benchSentence, VoiceID: voice})
				if err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
				rtf = append(rtf, res.ProcessingTime/res.Duration)
				for _, m := range []struct {
					c    *Client
					into *[]time.Duration
				}{{c, &ttfb}, {direct, &ttfbDirect}, {sentences, &ttfbBefore}} {
					if d, err := firstByte(ctx, m.c, Request{Text: benchSentence, VoiceID: voice, OutputFormat: "pcm"}); err != nil {
						b.Errorf("%s: stream: %v", voice, err) // reported, the figures still print
					} else {
						*m.into = append(*m.into, d)
					}
				}
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
			ms := func(d []time.Duration, q float64) time.Duration { return quantile(d, q).Round(time.Millisecond) }
			gain := "-"
			if a := quantile(ttfbDirect, 0.5); a > 0 {
				gain = fmt.Sprintf("%.2f", float64(quantile(ttfbBefore, 0.5))/float64(a))
			}
			b.Logf("%-17s %7s %7s %7s %7s %7s %7s %7.3f %11s %6s", voice, ms(lat, 0.5), ms(lat, 0.99),
				ms(ttfb, 0.5), ms(ttfbDirect, 0.5), ms(ttfbBefore, 0.5), gain, rtf[len(rtf)/2], eng, ratio)
			if voice == "slt" {
				b.ReportMetric(float64(quantile(lat, 0.5).Milliseconds()), "slt-p50-ms")
				b.ReportMetric(float64(quantile(ttfb, 0.5).Milliseconds()), "slt-ttfb-ms")
				b.ReportMetric(float64(quantile(ttfbDirect, 0.5).Milliseconds()), "slt-ttfb-direct-ms")
				b.ReportMetric(float64(quantile(ttfbBefore, 0.5).Milliseconds()), "slt-ttfb-sentence-ms")
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

// firstByte streams r as PCM and returns how long the first sample took;
// it reads the stream to its end.
func firstByte(ctx context.Context, c *Client, r Request) (time.Duration, error) {
	start := time.Now()
	s, err := c.Stream(ctx, r)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	one := make([]byte, 2)
	if _, err := io.ReadFull(s, one); err != nil {
		return 0, err
	}
	d := time.Since(start)
	if _, err := io.Copy(io.Discard, s); err != nil {
		return 0, err
	}
	return d, nil
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
