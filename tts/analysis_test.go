package tts

import (
	"errors"
	"math"
	"testing"
)

func synth(rate int, seconds float64, f func(t float64) float64) Audio {
	n := int(float64(rate) * seconds)
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(math.Max(-32768, math.Min(32767, 32767*f(float64(i)/float64(rate)))))
	}
	return Audio{Format: Format{SampleRate: rate, Channels: 1, BitsPerSample: 16}, Samples: s}
}

func TestCheckSpeechRejectsToneAndSilence(t *testing.T) {
	tone := synth(16000, 3, func(t float64) float64 { return 0.5 * math.Sin(2*math.Pi*440*t) })
	if _, err := CheckSpeech(tone, 8); !errors.Is(err, ErrTone) {
		t.Errorf("440 Hz sine: err = %v, want ErrTone", err)
	}
	// A tone gliding in pitch (the seed's "sine wave" with a sweep) is still a tone.
	sweep := synth(16000, 3, func(t float64) float64 { return 0.5 * math.Sin(2*math.Pi*(200*t+40*t*t)) })
	if _, err := CheckSpeech(sweep, 8); !errors.Is(err, ErrTone) {
		t.Errorf("sweep: err = %v, want ErrTone", err)
	}
	quiet := synth(16000, 3, func(float64) float64 { return 0 })
	if _, err := CheckSpeech(quiet, 8); !errors.Is(err, ErrSilence) {
		t.Errorf("silence: err = %v, want ErrSilence", err)
	}
}

func TestWAVRoundTripAndStreamedHeader(t *testing.T) {
	a := synth(22050, 0.5, func(t float64) float64 { return 0.3 * math.Sin(2*math.Pi*300*t) })
	b := EncodeWAV(a)
	got, err := DecodeWAV(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Format != a.Format || len(got.Samples) != len(a.Samples) || got.Samples[100] != a.Samples[100] {
		t.Fatalf("round trip: format %+v len %d, want %+v len %d", got.Format, len(got.Samples), a.Format, len(a.Samples))
	}
	// A streamed header says 0xFFFFFFFF: the samples run to the end.
	copy(b[40:44], []byte{0xff, 0xff, 0xff, 0xff})
	if got, err := DecodeWAV(b); err != nil || len(got.Samples) != len(a.Samples) {
		t.Fatalf("streamed header: %d samples, %v", len(got.Samples), err)
	}
	if _, err := DecodeWAV([]byte("RIFF....WAVEjunk")); !errors.Is(err, ErrNotWAV) {
		t.Errorf("junk: err = %v, want ErrNotWAV", err)
	}
}

func TestCheckSpeechRejectsSquareWave(t *testing.T) {
	sq := synth(16000, 3, func(t float64) float64 {
		if math.Sin(2*math.Pi*150*t) >= 0 {
			return 0.4
		}
		return -0.4
	})
	if _, err := CheckSpeech(sq, 8); !errors.Is(err, ErrTone) {
		t.Errorf("150 Hz square wave: err = %v, want ErrTone", err)
	}
}
