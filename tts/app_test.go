package tts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raydeploy/sdk/internal/testenv"
)

// The sentences the intelligibility check reads back (common words, so
// pocketsphinx's general en-us language model knows them).
var wordSentences = []string{
	"The quick brown fox jumps over the lazy dog.",
	"Please call me back when you get home tonight.",
	"We will meet at the train station at noon.",
}

func wordCount(s string) int { return len(strings.Fields(s)) }

// normWords lower-cases s and drops punctuation.
func normWords(s string) []string {
	var out []string
	for _, w := range strings.Fields(strings.ToLower(s)) {
		w = strings.Trim(w, ".,!?;:'\"")
		if w != "" {
			out = append(out, w)
		}
	}
	return out
}

// wer is the word error rate of hyp against ref (Levenshtein over words).
func wer(ref, hyp []string) float64 {
	d := make([][]int, len(ref)+1)
	for i := range d {
		d[i] = make([]int, len(hyp)+1)
		d[i][0] = i
	}
	for j := range hyp {
		d[0][j+1] = j + 1
	}
	for i := 1; i <= len(ref); i++ {
		for j := 1; j <= len(hyp); j++ {
			c := 1
			if ref[i-1] == hyp[j-1] {
				c = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+c)
		}
	}
	return float64(d[len(ref)][len(hyp)]) / float64(len(ref))
}

// recognize runs Debian's pocketsphinx (en-us model) on a 16 kHz mono WAV.
func recognize(t *testing.T, wav []byte) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "speech.wav")
	if err := os.WriteFile(f, wav, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pocketsphinx_continuous", "-infile", f, "-logfn", "/dev/null").Output()
	if err != nil {
		t.Fatalf("pocketsphinx: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func TestAppSpeaks(t *testing.T) {
	c := startApp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	t.Run("models", func(t *testing.T) {
		m, err := c.Models(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"slt", "rms", "awb", "kal16"} {
			v, ok := m.Voice(id)
			if !ok || v.Engine != "flite" || v.SampleRate != 16000 || !strings.HasPrefix(v.Language, "en") {
				t.Errorf("voice %s = %+v (listed %v), want a 16 kHz English flite voice", id, v, ok)
			}
		}
		if v, ok := m.Voice("espeak-en-us"); !ok || v.Engine != "espeak-ng" || !v.StreamsNatively || !v.SSML {
			t.Errorf("espeak-en-us = %+v, want espeak-ng streaming with SSML", v)
		}
		if m.DefaultVoice != "slt" || m.PrimaryModel != "flite" {
			t.Errorf("default voice %q engine %q, want slt on flite", m.DefaultVoice, m.PrimaryModel)
		}
		for _, n := range []string{"kyutai", "orpheus", "fastspeech2"} {
			if _, listed := m.Voice(n); listed || !strings.Contains(m.UnavailableModels[n], "no weights configured") {
				t.Errorf("neural %s: listed %v, reason %q; want unlisted with a reason", n, listed, m.UnavailableModels[n])
			}
		}
		if len(m.Emotions) < 6 || m.Emotions["sad"].Rate >= 1 {
			t.Errorf("emotions = %+v", m.Emotions)
		}
	})

	// speak returns the default voice's audio of a sentence.
	intelligibility := func(t *testing.T, speak func(text string) Audio) {
		var errs, words float64
		for _, s := range wordSentences {
			a := speak(s)
			if st, err := CheckSpeech(a, wordCount(s)); err != nil {
				t.Errorf("%q: %v", s, err)
			} else {
				t.Logf("%q: %s", s, st)
			}
			heard := recognize(t, EncodeWAV(a))
			ref := normWords(s)
			w := wer(ref, normWords(heard))
			t.Logf("pocketsphinx heard %q (WER %.2f)", heard, w)
			errs += w * float64(len(ref))
			words += float64(len(ref))
		}
		if total := errs / words; total > 0.15 {
			t.Errorf("word error rate of the default voice = %.2f, want <= 0.15", total)
		} else {
			t.Logf("word error rate of the default voice over %d words: %.3f", int(words), total)
		}
	}

	t.Run("synthesize and intelligibility", func(t *testing.T) {
		intelligibility(t, func(s string) Audio {
			a, res, err := c.SynthesizeAudio(ctx, Request{Text: s})
			if err != nil {
				t.Fatal(err)
			}
			if res.VoiceID != "slt" || res.ModelUsed != "flite:slt" || res.Duration <= 0 || res.ExpiresInS <= 0 {
				t.Errorf("result = %+v", res)
			}
			return a
		})
	})

	// The stream splits off a first phrase to start sooner: what it joins
	// back must stay as intelligible.
	t.Run("streamed intelligibility", func(t *testing.T) {
		intelligibility(t, func(s string) Audio {
			st, err := c.Stream(ctx, Request{Text: s, OutputFormat: "wav"})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			pcm, err := io.ReadAll(st)
			if err != nil {
				t.Fatal(err)
			}
			return Audio{Format: st.Format, Samples: decodePCM(pcm)}
		})
	})

	t.Run("emotions differ", func(t *testing.T) {
		const text = "I did not expect to see you here today. What a surprise this is."
		for _, voice := range []string{"slt", "espeak-en-us"} {
			st := map[string]SpeechStats{}
			for _, e := range []string{"neutral", "happy", "sad", "calm", "excited", "angry"} {
				a, _, err := c.SynthesizeAudio(ctx, Request{Text: text, VoiceID: voice, Emotion: e})
				if err != nil {
					t.Fatal(err)
				}
				s, err := CheckSpeech(a, wordCount(text))
				if err != nil {
					t.Errorf("%s %s: %v", voice, e, err)
				}
				st[e] = s
				t.Logf("%s %-8s %s", voice, e, s)
			}
			if !(st["happy"].F0Mean > st["neutral"].F0Mean*1.05 && st["neutral"].F0Mean > st["sad"].F0Mean*1.05) {
				t.Errorf("%s: F0 mean happy %.0f, neutral %.0f, sad %.0f; want happy > neutral > sad by 5%%",
					voice, st["happy"].F0Mean, st["neutral"].F0Mean, st["sad"].F0Mean)
			}
			if !(st["excited"].F0Range > st["calm"].F0Range*1.3) {
				t.Errorf("%s: F0 range excited %.0f, calm %.0f; want excited wider by 30%%", voice, st["excited"].F0Range, st["calm"].F0Range)
			}
			if !(st["sad"].Duration > st["neutral"].Duration && st["neutral"].Duration > st["excited"].Duration) {
				t.Errorf("%s: durations sad %v, neutral %v, excited %v; want sad > neutral > excited",
					voice, st["sad"].Duration, st["neutral"].Duration, st["excited"].Duration)
			}
			if !(st["angry"].RMSdBFS > st["sad"].RMSdBFS+3) {
				t.Errorf("%s: loudness angry %.1f, sad %.1f dBFS; want angry louder by 3 dB", voice, st["angry"].RMSdBFS, st["sad"].RMSdBFS)
			}
		}
	})

	longText := strings.Repeat("This sentence is one of several in a longer text. ", 4)

	t.Run("stream wav and pcm", func(t *testing.T) {
		for _, f := range []string{"wav", "pcm"} {
			s, err := c.Stream(ctx, Request{Text: longText, OutputFormat: f})
			if err != nil {
				t.Fatal(err)
			}
			pcm, err := io.ReadAll(s)
			s.Close()
			if err != nil {
				t.Fatal(err)
			}
			a := Audio{Format: s.Format, Samples: decodePCM(pcm)}
			if s.Format.SampleRate != 16000 {
				t.Errorf("%s: format %+v, want 16 kHz", f, s.Format)
			}
			if _, err := CheckSpeech(a, wordCount(longText)); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		}
	})

	t.Run("websocket first chunk before synthesis ends", func(t *testing.T) {
		ws, err := c.DialWS(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		for _, voice := range []string{"slt", "espeak-en-us"} {
			var got bytes.Buffer
			chunks := 0
			done, err := ws.Synthesize(ctx, Request{Text: longText, VoiceID: voice}, func(b []byte) error {
				chunks++
				got.Write(b)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if chunks < 2 || done.Chunks != chunks || done.Bytes != got.Len() {
				t.Errorf("%s: %d chunks %d bytes received, final message %+v", voice, chunks, got.Len(), done)
			}
			if !(done.FirstChunkS < done.SynthesisS) {
				t.Errorf("%s: first chunk sent at %.3fs, synthesis finished at %.3fs; want the first chunk before the end", voice, done.FirstChunkS, done.SynthesisS)
			}
			a := Audio{Format: Format{SampleRate: done.SampleRate, Channels: 1, BitsPerSample: 16}, Samples: decodePCM(got.Bytes())}
			if _, err := CheckSpeech(a, wordCount(longText)); err != nil {
				t.Errorf("%s: %v", voice, err)
			}
		}
		// One long sentence: its first phrase is synthesized alone and sent
		// first, so the audio starts after a few words, not the sentence.
		var first, all int
		if _, err := ws.Synthesize(ctx, Request{Text: benchSentence}, func(b []byte) error {
			if first == 0 {
				first = len(b)
			}
			all += len(b)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if first == 0 || first*3 > all {
			t.Errorf("one sentence of %d words: the first chunk holds %d of %d bytes, want under a third", wordCount(benchSentence), first, all)
		}
		// An error answers on the same connection, which stays usable.
		_, err = ws.Synthesize(ctx, Request{Text: "hi", VoiceID: "nobody"}, func([]byte) error { return nil })
		if !errors.Is(err, ErrUnknownVoice) {
			t.Errorf("unknown voice over WebSocket: err = %v, want ErrUnknownVoice", err)
		}
		if _, err := ws.Synthesize(ctx, Request{Text: "Still here."}, func([]byte) error { return nil }); err != nil {
			t.Errorf("after an error: %v", err)
		}
	})

	t.Run("concurrent requests", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make([]error, 8)
		durs := make([]float64, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				text := strings.Repeat("Hello again. ", i+1)
				res, err := c.Synthesize(ctx, Request{Text: text, VoiceID: []string{"slt", "rms", "espeak-en-us", "kal16"}[i%4]})
				errs[i], durs[i] = err, res.Duration
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("request %d: %v", i, err)
			}
		}
		if !(durs[7] > durs[3] && durs[3] > durs[0]) {
			t.Errorf("durations %v: want longer texts to give longer audio", durs)
		}
	})

	t.Run("bad input is a 4xx", func(t *testing.T) {
		long := strings.Repeat("a", 2001)
		cases := []struct {
			req    Request
			status int
			is     error
		}{
			{Request{Text: "hi", VoiceID: "nobody"}, 400, ErrUnknownVoice},
			{Request{Text: "   "}, 400, ErrEmptyText},
			{Request{Text: "hi", Speed: 9}, 400, ErrBadSpeed},
			{Request{Text: long}, 413, ErrTextTooLong},
			{Request{Text: "hi", Emotion: "smug"}, 400, ErrUnknownEmotion},
			{Request{Text: "hi", VoiceID: "kyutai"}, 400, ErrModelUnavailable},
			{Request{Text: "hi", OutputFormat: "mp3"}, 400, ErrUnsupportedFormat},
		}
		for _, tc := range cases {
			_, err := c.Synthesize(ctx, tc.req)
			var ae *APIError
			if !errors.As(err, &ae) || ae.Status != tc.status || !errors.Is(err, tc.is) || ae.Detail == "" {
				t.Errorf("%+v: err = %v, want %d matching %v", tc.req, err, tc.status, tc.is)
			}
		}
		// Unknown fields are refused, naming the field.
		resp, err := http.Post(c.url("/synthesize"), "application/json", strings.NewReader(`{"text":"hi","pitch":3}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), "pitch: unknown field") {
			t.Errorf("unknown field: %d %s", resp.StatusCode, b)
		}
		resp, err = http.Post(c.url("/voice-clone"), "application/json", strings.NewReader(`{"text":"x","reference_audio_base64":""}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if e := apiError("POST", "/voice-clone", resp.StatusCode, b); resp.StatusCode != 501 || !errors.Is(e, ErrNotImplemented) || !strings.Contains(e.Detail, "clone") {
			t.Errorf("voice-clone: %d %s, want 501 with the reason", resp.StatusCode, b)
		}
	})

	t.Run("openai speech", func(t *testing.T) {
		const text = "Good morning, and welcome to the show."
		wav, emo, err := c.Speech(ctx, SpeechRequest{Model: "tts-1", Input: text, Voice: "alloy", Instructions: "Speak in a cheerful and positive tone."})
		if err != nil {
			t.Fatal(err)
		}
		a, err := DecodeWAV(wav)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := CheckSpeech(a, wordCount(text)); err != nil || emo != "happy" {
			t.Errorf("wav: %v, emotion %q (want happy)", err, emo)
		}
		pcm, _, err := c.Speech(ctx, SpeechRequest{Model: "tts-1", Input: text, Voice: "echo", ResponseFormat: "pcm"})
		if err != nil {
			t.Fatal(err)
		}
		pa := Audio{Format: Format{SampleRate: 24000, Channels: 1, BitsPerSample: 16}, Samples: decodePCM(pcm)}
		if _, err := CheckSpeech(pa, wordCount(text)); err != nil {
			t.Errorf("pcm at 24 kHz: %v", err)
		}
		_, _, err = c.Speech(ctx, SpeechRequest{Model: "tts-1", Input: text, Voice: "alloy", ResponseFormat: "mp3"})
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != "unsupported_format" {
			t.Errorf("mp3: err = %v, want 400 unsupported_format in OpenAI's error shape", err)
		}
	})

	t.Run("gate", func(t *testing.T) {
		// Every voice (the emotions are checked above).
		rep, err := Gate(ctx, c, GateOptions{Emotions: []string{"neutral"}})
		t.Logf("gate:\n%s", rep)
		if err != nil || !rep.OK() || len(rep.Items) < 10 {
			t.Errorf("gate: %v (%d items)", err, len(rep.Items))
		}
	})

	t.Run("docs", func(t *testing.T) {
		for _, p := range []string{"/docs", "/openapi.json"} {
			resp, err := http.Get(c.url(p))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || (p == "/openapi.json" && !json.Valid(b)) || !bytes.Contains(b, []byte("raydeploy TTS")) {
				t.Errorf("%s: %d %.100s", p, resp.StatusCode, b)
			}
		}
	})
}

// startApp runs the app under Debian's python3 (FastAPI and uvicorn from
// Debian) on a free local port and returns a client for it; config is the
// app's settings as JSON (default: none).
func startApp(t testing.TB, config ...string) *Client {
	t.Helper()
	requireAppRuntime(t)
	app := testenv.PythonApp{Python: debianPython, Write: WriteApp, Module: PythonPackage}
	if len(config) > 0 {
		app.Args = []string{"--config", config[0]}
	}
	c, err := NewClient(ClientConfig{BaseURL: testenv.StartPythonApp(t, app).URL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The app run with the args a Service generates: FirstPhraseWords decides
// how much of a long sentence the first streamed chunk holds, and with a
// short first phrase that chunk is sent before the sentence is synthesized.
func TestFirstPhraseWordsDecidesFirstChunk(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	type result struct {
		first, all int
		done       StreamDone
	}
	stream := func(words int) result {
		args, err := json.Marshal(Service{FirstPhraseWords: words}.App().Args)
		if err != nil {
			t.Fatal(err)
		}
		ws, err := startApp(t, string(args)).DialWS(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		var r result
		r.done, err = ws.Synthesize(ctx, Request{Text: benchSentence, VoiceID: "slt"}, func(b []byte) error {
			if r.first == 0 {
				r.first = len(b)
			}
			r.all += len(b)
			return nil
		})
		if err != nil {
			t.Fatalf("FirstPhraseWords %d: %v", words, err)
		}
		t.Logf("FirstPhraseWords %2d: first chunk %6d of %6d bytes, sent at %.3fs, synthesis done at %.3fs",
			words, r.first, r.all, r.done.FirstChunkS, r.done.SynthesisS)
		return r
	}
	short, def, whole := stream(2), stream(0), stream(WholeSentences)
	if !(short.first < def.first && def.first < whole.first) {
		t.Errorf("first chunks of %d words: %d bytes (2 words), %d (default %d), %d (whole sentences); want them in that order, growing",
			wordCount(benchSentence), short.first, def.first, DefaultFirstPhraseWords, whole.first)
	}
	if short.first*5 > short.all || !(short.done.FirstChunkS < short.done.SynthesisS) {
		t.Errorf("2-word first phrase: first chunk %d of %d bytes at %.3fs, synthesis done at %.3fs; want under a fifth, sent before the end",
			short.first, short.all, short.done.FirstChunkS, short.done.SynthesisS)
	}
	if whole.first != whole.all {
		t.Errorf("whole sentences: first chunk %d of %d bytes; want the one sentence in one chunk", whole.first, whole.all)
	}
}
