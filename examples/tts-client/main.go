// Command tts-client speaks to a deployed TTS service (package tts): list
// voices, synthesize to a WAV file (whole, streamed, or over the WebSocket),
// OpenAI's speech API, and the functional gate.
//
//	tts-client --url http://HEAD:8000 models
//	tts-client --url http://HEAD:8000 --voice slt --emotion happy --out hello.wav say "Hello there."
//	tts-client --url http://HEAD:8000 --mode stream --out long.wav say "A longer text. With sentences."
//	tts-client --url http://HEAD:8000 --mode ws --out ws.wav say "Over the WebSocket."
//	tts-client --url http://HEAD:8000 --mode openai --out oa.wav say "OpenAI's speech API."
//	tts-client --url http://HEAD:8000 gate
//
// It is a thin layer of flags and printing over package tts.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/raydeploy/sdk/tts"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tts-client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8000", "the service's base URL (Serve proxy and route prefix)")
	voice := fs.String("voice", "", "voice id (default: the service's default voice)")
	emotion := fs.String("emotion", "", "neutral, happy, sad, angry, calm or excited")
	speed := fs.Float64("speed", 0, "speaking rate, 0.25 to 4 (default 1)")
	mode := fs.String("mode", "synthesize", "say: synthesize, stream, ws or openai")
	out := fs.String("out", "speech.wav", "say: the WAV file to write")
	timeout := fs.Duration("timeout", 2*time.Minute, "bound of the whole command")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	c, err := tts.NewClient(tts.ClientConfig{BaseURL: *url})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	switch fs.Arg(0) {
	case "models":
		m, err := c.Models(ctx)
		if err != nil {
			return fail(stderr, err)
		}
		fmt.Fprintf(stdout, "default voice: %s\n", m.DefaultVoice)
		for _, v := range m.Voices {
			fmt.Fprintf(stdout, "%-18s %-10s %-6s %6d Hz  %s\n", v.ID, v.Engine, v.Language, v.SampleRate, v.Description)
		}
		for name, why := range m.UnavailableModels {
			fmt.Fprintf(stdout, "not loaded: %s: %s\n", name, why)
		}
		return 0
	case "say":
		text := strings.Join(fs.Args()[1:], " ")
		a, err := say(ctx, c, *mode, tts.Request{Text: text, VoiceID: *voice, Emotion: *emotion, Speed: *speed})
		if err != nil {
			return fail(stderr, err)
		}
		if err := os.WriteFile(*out, tts.EncodeWAV(a), 0o644); err != nil {
			return fail(stderr, err)
		}
		fmt.Fprintf(stdout, "wrote %s: %.2fs at %d Hz (%s)\n", *out, a.Duration().Seconds(), a.Format.SampleRate, tts.Analyze(a))
		return 0
	case "gate":
		rep, err := tts.Gate(ctx, c, tts.GateOptions{})
		fmt.Fprint(stdout, rep)
		if err != nil {
			return fail(stderr, err)
		}
		return 0
	case "health":
		h, err := c.Health(ctx)
		if err != nil {
			return fail(stderr, err)
		}
		b, _ := json.MarshalIndent(h, "", "  ")
		fmt.Fprintln(stdout, string(b))
		return 0
	}
	fmt.Fprintln(stderr, "usage: tts-client [flags] models|health|gate|say TEXT...")
	return 2
}

func say(ctx context.Context, c *tts.Client, mode string, r tts.Request) (tts.Audio, error) {
	switch mode {
	case "synthesize":
		a, _, err := c.SynthesizeAudio(ctx, r)
		return a, err
	case "stream":
		r.OutputFormat = "pcm"
		s, err := c.Stream(ctx, r)
		if err != nil {
			return tts.Audio{}, err
		}
		defer s.Close()
		return readPCM(s, s.Format)
	case "ws":
		ws, err := c.DialWS(ctx)
		if err != nil {
			return tts.Audio{}, err
		}
		defer ws.Close()
		var pcm []byte
		done, err := ws.Synthesize(ctx, r, func(b []byte) error { pcm = append(pcm, b...); return nil })
		if err != nil {
			return tts.Audio{}, err
		}
		return tts.DecodePCM(pcm, tts.Format{SampleRate: done.SampleRate, Channels: 1, BitsPerSample: 16}), nil
	case "openai":
		b, _, err := c.Speech(ctx, tts.SpeechRequest{Model: "tts-1", Input: r.Text, Voice: orDefault(r.VoiceID, "alloy"), Speed: r.Speed, Instructions: r.Emotion})
		if err != nil {
			return tts.Audio{}, err
		}
		return tts.DecodeWAV(b)
	}
	return tts.Audio{}, fmt.Errorf("unknown --mode %q (synthesize, stream, ws, openai)", mode)
}

func readPCM(r io.Reader, f tts.Format) (tts.Audio, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return tts.Audio{}, err
	}
	return tts.DecodePCM(b, f), nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func fail(stderr io.Writer, err error) int {
	fmt.Fprintln(stderr, err)
	var ae *tts.APIError
	if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 {
		return 2
	}
	return 1
}
