package tts

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Format describes raw PCM audio: the service always sends 16-bit signed
// little-endian samples.
type Format struct {
	// SampleRate in Hz.
	SampleRate int
	// Channels is 1 for every voice of the service.
	Channels int
	// BitsPerSample is 16.
	BitsPerSample int
}

// Audio is decoded 16-bit PCM.
type Audio struct {
	// Format of the samples.
	Format Format
	// Samples, interleaved when Channels > 1.
	Samples []int16
}

// Duration is how long the audio plays.
func (a Audio) Duration() time.Duration {
	if a.Format.SampleRate == 0 || a.Format.Channels == 0 {
		return 0
	}
	frames := len(a.Samples) / a.Format.Channels
	return time.Duration(float64(frames) / float64(a.Format.SampleRate) * float64(time.Second))
}

// ErrNotWAV is matched (errors.Is) by every WAV decoding error.
var ErrNotWAV = errors.New("tts: not a 16-bit PCM WAV")

// parseWAVHeader reads the chunks before the samples. It returns the format
// and the offset of the first sample, or ok=false when b does not hold the
// whole header yet.
func parseWAVHeader(b []byte) (f Format, off int, ok bool, err error) {
	if len(b) < 12 {
		return f, 0, false, nil
	}
	if string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return f, 0, false, fmt.Errorf("%w: no RIFF/WAVE header", ErrNotWAV)
	}
	pos := 12
	for {
		if len(b) < pos+8 {
			return f, 0, false, nil
		}
		id, size := string(b[pos:pos+4]), int(binary.LittleEndian.Uint32(b[pos+4:pos+8]))
		pos += 8
		if id == "data" {
			if f.SampleRate == 0 {
				return f, 0, false, fmt.Errorf("%w: data chunk before fmt chunk", ErrNotWAV)
			}
			return f, pos, true, nil
		}
		if size < 0 || size > 1<<20 {
			return f, 0, false, fmt.Errorf("%w: chunk %q of %d bytes", ErrNotWAV, id, size)
		}
		if len(b) < pos+size {
			return f, 0, false, nil
		}
		if id == "fmt " {
			if size < 16 {
				return f, 0, false, fmt.Errorf("%w: fmt chunk of %d bytes", ErrNotWAV, size)
			}
			tag := binary.LittleEndian.Uint16(b[pos:])
			f.Channels = int(binary.LittleEndian.Uint16(b[pos+2:]))
			f.SampleRate = int(binary.LittleEndian.Uint32(b[pos+4:]))
			f.BitsPerSample = int(binary.LittleEndian.Uint16(b[pos+14:]))
			if tag != 1 || f.BitsPerSample != 16 || f.Channels < 1 || f.SampleRate < 1 {
				return f, 0, false, fmt.Errorf("%w: format %d, %d bits, %d channels, %d Hz", ErrNotWAV, tag, f.BitsPerSample, f.Channels, f.SampleRate)
			}
		}
		pos += size + size&1
	}
}

// DecodeWAV decodes a 16-bit PCM WAV file. A streamed WAV whose header gives
// an unknown length (0 or 0xFFFFFFFF) is read to the end of b.
func DecodeWAV(b []byte) (Audio, error) {
	f, off, ok, err := parseWAVHeader(b)
	if err != nil {
		return Audio{}, err
	}
	if !ok {
		return Audio{}, fmt.Errorf("%w: truncated header (%d bytes)", ErrNotWAV, len(b))
	}
	size := int(binary.LittleEndian.Uint32(b[off-4 : off]))
	data := b[off:]
	if size > 0 && size != 0xFFFFFFFF && size <= len(data) {
		data = data[:size]
	}
	return Audio{Format: f, Samples: decodePCM(data)}, nil
}

// decodePCM turns little-endian 16-bit samples into int16s (a trailing odd byte is dropped).
func decodePCM(b []byte) []int16 {
	s := make([]int16, len(b)/2)
	for i := range s {
		s[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return s
}

// EncodeWAV returns a WAV file holding a.
func EncodeWAV(a Audio) []byte {
	ch := max(a.Format.Channels, 1)
	data := 2 * len(a.Samples)
	b := make([]byte, 44+data)
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+data))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1)
	binary.LittleEndian.PutUint16(b[22:], uint16(ch))
	binary.LittleEndian.PutUint32(b[24:], uint32(a.Format.SampleRate))
	binary.LittleEndian.PutUint32(b[28:], uint32(a.Format.SampleRate*ch*2))
	binary.LittleEndian.PutUint16(b[32:], uint16(ch*2))
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(data))
	for i, s := range a.Samples {
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(s))
	}
	return b
}

// DecodePCM wraps raw 16-bit little-endian PCM (what Stream, the WebSocket
// and the "pcm" formats carry) as Audio of format f.
func DecodePCM(b []byte, f Format) Audio {
	return Audio{Format: f, Samples: decodePCM(b)}
}
