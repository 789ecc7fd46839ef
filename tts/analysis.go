package tts

import (
	"errors"
	"fmt"
	"math"
	"math/cmplx"
	"slices"
	"time"
)

// SpeechStats are measurements of a piece of audio, used to tell speech from
// silence and from a synthetic tone, and to compare prosody.
type SpeechStats struct {
	// Duration of the audio.
	Duration time.Duration
	// RMSdBFS is the loudness of the whole audio in dB below full scale.
	RMSdBFS float64
	// VoicedFraction is the share of frames with a clear pitch.
	VoicedFraction float64
	// F0Mean is the mean fundamental frequency of the voiced frames, Hz.
	F0Mean float64
	// F0Range is the spread of the fundamental frequency (90th minus 10th
	// percentile over voiced frames), Hz.
	F0Range float64
	// PeakConcentration is the median share of a loud frame's spectral
	// energy within 3 bins (about 50 Hz) of its strongest frequency: above
	// 0.99 for a sine; 0.35 to 0.9 measured for the voices here (flite's
	// strong first harmonic gives the high end).
	PeakConcentration float64
	// PeakSpread is the standard deviation, in Hz, of the strongest frequency
	// across loud frames: near 0 for a steady tone.
	PeakSpread float64
}

// String prints the stats on one line.
func (s SpeechStats) String() string {
	return fmt.Sprintf("duration %.2fs, %.1f dBFS, voiced %.0f%%, F0 mean %.0f Hz range %.0f Hz, peak concentration %.2f, peak spread %.0f Hz",
		s.Duration.Seconds(), s.RMSdBFS, 100*s.VoicedFraction, s.F0Mean, s.F0Range, s.PeakConcentration, s.PeakSpread)
}

// Analyze measures a. Only the first channel is read.
func Analyze(a Audio) SpeechStats {
	x := mono(a)
	sr := float64(a.Format.SampleRate)
	st := SpeechStats{Duration: a.Duration(), RMSdBFS: -math.Inf(1)}
	if len(x) == 0 || sr == 0 {
		return st
	}
	var sum float64
	for _, v := range x {
		sum += v * v
	}
	if rms := math.Sqrt(sum / float64(len(x))); rms > 0 {
		st.RMSdBFS = 20 * math.Log10(rms)
	}
	frame, hop := int(0.040*sr), int(0.010*sr)
	if len(x) < frame {
		return st
	}
	// Frame energies, to pick the loud frames (speech, not pauses).
	var energies []float64
	for off := 0; off+frame <= len(x); off += hop {
		energies = append(energies, rmsOf(x[off:off+frame]))
	}
	loudest := slices.Max(energies)
	minLag, maxLag := int(sr/400), int(sr/60)
	nfft := 1
	for nfft < frame {
		nfft <<= 1
	}
	var f0s, conc, peaks []float64
	loud := 0
	for i, off := 0, 0; off+frame <= len(x); i, off = i+1, off+hop {
		if energies[i] < 0.1*loudest || energies[i] < 1e-4 {
			continue
		}
		loud++
		fr := x[off : off+frame]
		if f0, ok := pitch(fr, sr, minLag, maxLag); ok {
			f0s = append(f0s, f0)
		}
		c, pk := spectralPeak(fr, nfft, sr)
		conc = append(conc, c)
		peaks = append(peaks, pk)
	}
	if loud > 0 {
		st.VoicedFraction = float64(len(f0s)) / float64(loud)
	}
	if len(f0s) > 0 {
		st.F0Mean = mean(f0s)
		slices.Sort(f0s)
		st.F0Range = percentile(f0s, 0.9) - percentile(f0s, 0.1)
	}
	if len(conc) > 0 {
		slices.Sort(conc)
		st.PeakConcentration = percentile(conc, 0.5)
		m := mean(peaks)
		var v float64
		for _, p := range peaks {
			v += (p - m) * (p - m)
		}
		st.PeakSpread = math.Sqrt(v / float64(len(peaks)))
	}
	return st
}

// Errors of CheckSpeech (matched with errors.Is).
var (
	ErrSilence     = errors.New("tts: audio is silent")
	ErrTone        = errors.New("tts: audio is a steady tone, not speech")
	ErrBadDuration = errors.New("tts: audio duration does not fit the text")
)

// CheckSpeech reports whether a can be speech of a text with the given
// number of words at normal speed: not silent, not a single tone (spectral
// check), and between 0.7 and 6 words per second.
func CheckSpeech(a Audio, words int) (SpeechStats, error) {
	st := Analyze(a)
	if st.RMSdBFS < -50 {
		return st, fmt.Errorf("%w (%.1f dBFS)", ErrSilence, st.RMSdBFS)
	}
	// A sine (steady or gliding) keeps nearly all its energy next to one
	// frequency; a steady periodic sound (square, sawtooth) keeps its pitch.
	// Voices have harmonics, formants, noise, and a moving pitch.
	if st.PeakConcentration > 0.95 || (st.VoicedFraction > 0.5 && st.F0Range < 3) {
		return st, fmt.Errorf("%w (%s)", ErrTone, st)
	}
	if words > 0 {
		wps := float64(words) / st.Duration.Seconds()
		if wps < 0.7 || wps > 6 {
			return st, fmt.Errorf("%w: %d words in %.2fs (%.1f words/s, want 0.7 to 6)", ErrBadDuration, words, st.Duration.Seconds(), wps)
		}
	}
	return st, nil
}

func mono(a Audio) []float64 {
	ch := max(a.Format.Channels, 1)
	x := make([]float64, len(a.Samples)/ch)
	for i := range x {
		x[i] = float64(a.Samples[i*ch]) / 32768
	}
	return x
}

func rmsOf(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v * v
	}
	return math.Sqrt(s / float64(len(x)))
}

func mean(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// percentile of sorted x (nearest rank).
func percentile(sorted []float64, p float64) float64 {
	i := int(math.Round(p * float64(len(sorted)-1)))
	return sorted[i]
}

// pitch estimates the fundamental frequency of one frame with the normalized
// autocorrelation; ok is false for unvoiced frames.
func pitch(fr []float64, sr float64, minLag, maxLag int) (float64, bool) {
	n := len(fr)
	if maxLag >= n/2 {
		maxLag = n/2 - 1
	}
	m := mean(fr)
	x := make([]float64, n)
	for i, v := range fr {
		x[i] = v - m
	}
	best, bestLag := 0.0, 0
	corr := make([]float64, maxLag+2)
	for lag := minLag; lag <= maxLag+1; lag++ {
		var num, e1, e2 float64
		for i := 0; i+lag < n; i++ {
			num += x[i] * x[i+lag]
			e1 += x[i] * x[i]
			e2 += x[i+lag] * x[i+lag]
		}
		if e1 > 0 && e2 > 0 {
			corr[lag] = num / math.Sqrt(e1*e2)
		}
	}
	for lag := minLag + 1; lag <= maxLag; lag++ {
		if corr[lag] > corr[lag-1] && corr[lag] >= corr[lag+1] && corr[lag] > best {
			best, bestLag = corr[lag], lag
		}
	}
	if best < 0.6 || bestLag == 0 {
		return 0, false
	}
	// Prefer the shortest lag whose peak is nearly as strong (avoids octave errors).
	for lag := minLag + 1; lag < bestLag; lag++ {
		if corr[lag] > corr[lag-1] && corr[lag] >= corr[lag+1] && corr[lag] > 0.9*best {
			bestLag = lag
			break
		}
	}
	return sr / float64(bestLag), true
}

// spectralPeak returns the share of the frame's energy within 3 bins of its
// strongest frequency, and that frequency.
func spectralPeak(fr []float64, nfft int, sr float64) (float64, float64) {
	buf := make([]complex128, nfft)
	n := len(fr)
	for i, v := range fr {
		w := 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(n-1))
		buf[i] = complex(v*w, 0)
	}
	fft(buf)
	half := nfft / 2
	power := make([]float64, half)
	var total float64
	peak := 1
	for k := 1; k < half; k++ {
		p := real(buf[k])*real(buf[k]) + imag(buf[k])*imag(buf[k])
		power[k] = p
		total += p
		if p > power[peak] {
			peak = k
		}
	}
	if total == 0 {
		return 0, 0
	}
	var near float64
	for k := max(1, peak-3); k <= min(half-1, peak+3); k++ {
		near += power[k]
	}
	return near / total, float64(peak) * sr / float64(nfft)
}

// fft is an in-place radix-2 Cooley-Tukey transform; len(a) is a power of two.
func fft(a []complex128) {
	n := len(a)
	for i, j := 1, 0; i < n; i++ {
		bit := n >> 1
		for ; j&bit != 0; bit >>= 1 {
			j ^= bit
		}
		j ^= bit
		if i < j {
			a[i], a[j] = a[j], a[i]
		}
	}
	for size := 2; size <= n; size <<= 1 {
		w := cmplx.Exp(complex(0, -2*math.Pi/float64(size)))
		for start := 0; start < n; start += size {
			wk := complex(1, 0)
			for k := 0; k < size/2; k++ {
				u, v := a[start+k], a[start+k+size/2]*wk
				a[start+k], a[start+k+size/2] = u+v, u-v
				wk *= w
			}
		}
	}
}
