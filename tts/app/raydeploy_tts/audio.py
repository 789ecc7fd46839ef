"""PCM and WAV helpers: 16-bit signed little-endian mono, pure Python."""

import array
import struct
import sys

SAMPLE_WIDTH = 2  # bytes per sample: every engine here writes 16-bit PCM
STREAM_SIZE = 0xFFFFFFFF  # RIFF/data size of a WAV whose length is not known yet


class WavError(ValueError):
    """An engine produced something that is not a PCM WAV."""


def wav_header(sample_rate, channels=1, data_size=None):
    """A 44-byte WAV header; data_size None means a stream of unknown length."""
    if data_size is None:
        riff, data = STREAM_SIZE, STREAM_SIZE
    else:
        riff, data = 36 + data_size, data_size
    byte_rate = sample_rate * channels * SAMPLE_WIDTH
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", riff, b"WAVE", b"fmt ", 16, 1, channels, sample_rate,
        byte_rate, channels * SAMPLE_WIDTH, 8 * SAMPLE_WIDTH, b"data", data,
    )


def wav_bytes(pcm, sample_rate, channels=1):
    """A complete WAV file holding pcm."""
    return wav_header(sample_rate, channels, len(pcm)) + pcm


def parse_wav_header(buf):
    """Parse the chunks before the sample data of a PCM WAV.

    Returns (sample_rate, channels, offset of the first sample) or None when
    buf does not hold the whole header yet. Raises WavError for anything but
    16-bit PCM."""
    if len(buf) < 12:
        return None
    if buf[:4] != b"RIFF" or buf[8:12] != b"WAVE":
        raise WavError("not a RIFF/WAVE stream")
    pos, rate, channels = 12, None, None
    while True:
        if len(buf) < pos + 8:
            return None
        cid, size = struct.unpack_from("<4sI", buf, pos)
        pos += 8
        if cid == b"data":
            if rate is None:
                raise WavError("data chunk before fmt chunk")
            return rate, channels, pos
        if len(buf) < pos + size:
            return None
        if cid == b"fmt ":
            fmt, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", buf, pos)
            if fmt != 1 or bits != 16:
                raise WavError("want 16-bit PCM, got format %d with %d bits" % (fmt, bits))
        pos += size + (size & 1)


def split_wav(data):
    """(sample_rate, channels, pcm) of a complete WAV file."""
    head = parse_wav_header(data)
    if head is None:
        raise WavError("truncated WAV (%d bytes)" % len(data))
    rate, channels, off = head
    pcm = data[off:]
    return rate, channels, pcm[: len(pcm) - (len(pcm) % SAMPLE_WIDTH)]


def _samples(pcm):
    a = array.array("h")
    a.frombytes(pcm)
    if sys.byteorder == "big":
        a.byteswap()
    return a


def _pcm(a):
    if sys.byteorder == "big":
        a.byteswap()
    return a.tobytes()


def gain(pcm, factor):
    """Scale the samples by factor, clipping to the 16-bit range."""
    if abs(factor - 1.0) < 1e-3 or not pcm:
        return pcm
    a = _samples(pcm)
    for i, v in enumerate(a):
        v = int(v * factor)
        a[i] = 32767 if v > 32767 else (-32768 if v < -32768 else v)
    return _pcm(a)


def trim_silence(pcm, sample_rate, leading=False, trailing=False, threshold=64, keep_ms=10):
    """pcm without the near-silence (|sample| <= threshold, about -54 dBFS)
    at its start and/or end, keeping keep_ms of it so no sound is cut."""
    a = _samples(pcm)
    n = len(a)
    keep = int(sample_rate * keep_ms / 1000)
    lo, hi = 0, n
    if leading:
        while lo < n and -threshold <= a[lo] <= threshold:
            lo += 1
        lo = max(0, lo - keep)
    if trailing:
        while hi > lo and -threshold <= a[hi - 1] <= threshold:
            hi -= 1
        hi = min(n, hi + keep)
    if lo == 0 and hi == n:
        return pcm
    return pcm[2 * lo : 2 * hi]


def silence(sample_rate, ms):
    """ms milliseconds of silence."""
    return b"\x00\x00" * int(sample_rate * ms / 1000)


def resample(pcm, src_rate, dst_rate):
    """Linear-interpolation resampling (used for OpenAI's 24 kHz pcm format)."""
    if src_rate == dst_rate or not pcm:
        return pcm
    a = _samples(pcm)
    n = len(a)
    out_n = int(n * dst_rate / src_rate)
    out = array.array("h", bytes(2 * out_n))
    step = src_rate / dst_rate
    for i in range(out_n):
        x = i * step
        j = int(x)
        if j + 1 >= n:
            out[i] = a[n - 1]
            continue
        f = x - j
        out[i] = int(a[j] * (1 - f) + a[j + 1] * f)
    return _pcm(out)


def duration(pcm, sample_rate, channels=1):
    """Seconds of audio in pcm."""
    return len(pcm) / float(sample_rate * channels * SAMPLE_WIDTH)
