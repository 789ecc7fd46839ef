package tts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// GateSentence is the fixed sentence the functional gate synthesizes.
const GateSentence = "The quick brown fox jumps over the lazy dog near the bank of the river."

// GateOptions selects what Gate checks. Zero fields take defaults.
type GateOptions struct {
	// Voices to check with every emotion; default: the default voice.
	Voices []string
	// NeutralVoices are checked with the neutral emotion only; default:
	// every other voice the service lists.
	NeutralVoices []string
	// Emotions to check; default: every emotion the service lists.
	Emotions []string
	// Sentence to speak; default GateSentence.
	Sentence string
}

// GateItem is the outcome for one voice and emotion.
type GateItem struct {
	// Voice is the voice's ID.
	Voice string `json:"voice"`
	// Emotion is the prosody preset spoken with.
	Emotion string `json:"emotion"`
	// FirstByte is the time from the request to the first PCM byte.
	FirstByte time.Duration `json:"first_byte_ns"`
	// Total is the time until the last byte.
	Total time.Duration `json:"total_ns"`
	// AudioDuration is how long the speech plays.
	AudioDuration time.Duration `json:"audio_duration_ns"`
	// RealTimeFactor is Total / AudioDuration (below 1: faster than real time).
	RealTimeFactor float64 `json:"real_time_factor"`
	// Stats are the measurements of the audio received.
	Stats SpeechStats `json:"stats"`
	// Error is why the item failed, "" when it passed.
	Error string `json:"error,omitempty"`
}

// GateReport is the outcome of Gate.
type GateReport struct {
	// Items holds one item per voice and emotion checked.
	Items []GateItem `json:"items"`
}

// OK reports whether every item passed.
func (r GateReport) OK() bool {
	for _, it := range r.Items {
		if it.Error != "" {
			return false
		}
	}
	return len(r.Items) > 0
}

// String renders one line per item.
func (r GateReport) String() string {
	var b strings.Builder
	for _, it := range r.Items {
		status := "ok"
		if it.Error != "" {
			status = "FAIL " + it.Error
		}
		fmt.Fprintf(&b, "%-18s %-8s first byte %6.1f ms  total %6.1f ms  audio %5.2fs  RTF %.3f  %s\n", it.Voice, it.Emotion,
			float64(it.FirstByte.Microseconds())/1000, float64(it.Total.Microseconds())/1000, it.AudioDuration.Seconds(), it.RealTimeFactor, status)
	}
	return b.String()
}

// Gate is the functional check of a running service: per voice and emotion
// it streams a fixed sentence and checks that the audio decodes, is speech
// (not silence, not a single tone: CheckSpeech) and lasts what the word
// count needs; it reports time to first byte and real-time factor. The
// error joins every failed item.
func Gate(ctx context.Context, c *Client, opts GateOptions) (GateReport, error) {
	m, err := c.Models(ctx)
	if err != nil {
		return GateReport{}, err
	}
	if opts.Sentence == "" {
		opts.Sentence = GateSentence
	}
	if opts.Voices == nil {
		opts.Voices = []string{m.DefaultVoice}
	}
	if opts.Emotions == nil {
		for _, e := range []string{"neutral", "happy", "sad", "angry", "calm", "excited"} {
			if _, ok := m.Emotions[e]; ok {
				opts.Emotions = append(opts.Emotions, e)
			}
		}
	}
	if opts.NeutralVoices == nil {
		for _, v := range m.Voices {
			if !contains(opts.Voices, v.ID) {
				opts.NeutralVoices = append(opts.NeutralVoices, v.ID)
			}
		}
	}
	var rep GateReport
	var errs []error
	run := func(voice, emotion string) {
		it := gateOne(ctx, c, voice, emotion, opts.Sentence)
		if it.Error != "" {
			errs = append(errs, fmt.Errorf("tts gate: voice %s, emotion %s: %s", voice, emotion, it.Error))
		}
		rep.Items = append(rep.Items, it)
	}
	for _, v := range opts.Voices {
		for _, e := range opts.Emotions {
			run(v, e)
		}
	}
	for _, v := range opts.NeutralVoices {
		run(v, "neutral")
	}
	return rep, errors.Join(errs...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func gateOne(ctx context.Context, c *Client, voice, emotion, text string) GateItem {
	it := GateItem{Voice: voice, Emotion: emotion}
	start := time.Now()
	s, err := c.Stream(ctx, Request{Text: text, VoiceID: voice, Emotion: emotion, OutputFormat: "pcm"})
	if err != nil {
		it.Error = err.Error()
		return it
	}
	defer s.Close()
	first := make([]byte, 2)
	if _, err := io.ReadFull(s, first); err != nil {
		it.Error = "no audio: " + err.Error()
		return it
	}
	it.FirstByte = time.Since(start)
	rest, err := io.ReadAll(s)
	it.Total = time.Since(start)
	if err != nil {
		it.Error = "stream: " + err.Error()
		return it
	}
	a := Audio{Format: s.Format, Samples: decodePCM(append(first, rest...))}
	it.AudioDuration = a.Duration()
	if it.AudioDuration > 0 {
		it.RealTimeFactor = it.Total.Seconds() / it.AudioDuration.Seconds()
	}
	st, err := CheckSpeech(a, len(strings.Fields(text)))
	it.Stats = st
	if err != nil {
		it.Error = err.Error()
	}
	return it
}
