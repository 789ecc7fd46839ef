"""Speech engines behind one Backend interface.

Every backend here runs a real speech synthesizer from Debian's main archive
as a subprocess: flite (voices slt, rms, awb, kal16), espeak-ng (many
languages, streams while it speaks, SSML) and festival (the HTS voice
cmu_us_slt_arctic_hts when festvox-us-slt-hts is installed). A backend lists
only voices whose engine and voice data are present on this machine.

Emotion is prosody, not a neural emotion model: each preset (PRESETS) sets a
speaking rate, a pitch level, a pitch range, a volume and the pause between
sentences, and each backend maps what its engine can control (see the
backend's docstring).
"""

import asyncio
import dataclasses
import os
import re
import shutil
from xml.sax.saxutils import escape

from . import audio


@dataclasses.dataclass(frozen=True)
class Prosody:
    """A prosody preset. Factors are relative to the voice's own default."""

    rate: float = 1.0  # speaking rate (2.0 = twice as fast)
    pitch: float = 1.0  # mean fundamental frequency
    pitch_range: float = 1.0  # spread of the fundamental frequency
    volume: float = 1.0  # amplitude
    pause_ms: int = 250  # silence between sentences


# The emotion presets (documented in tts/doc.go and /models).
PRESETS = {
    "neutral": Prosody(),
    "happy": Prosody(rate=1.1, pitch=1.15, pitch_range=1.6, volume=1.1, pause_ms=200),
    "sad": Prosody(rate=0.8, pitch=0.85, pitch_range=0.5, volume=0.7, pause_ms=450),
    "angry": Prosody(rate=1.1, pitch=1.05, pitch_range=1.4, volume=1.25, pause_ms=150),
    "calm": Prosody(rate=0.9, pitch=0.95, pitch_range=0.7, volume=0.85, pause_ms=350),
    "excited": Prosody(rate=1.25, pitch=1.3, pitch_range=1.9, volume=1.2, pause_ms=120),
}


@dataclasses.dataclass(frozen=True)
class Voice:
    """One voice a backend can speak with."""

    id: str
    engine: str
    language: str
    sample_rate: int
    gender: str
    description: str
    engine_voice: str  # the engine's own name for it


class SynthesisError(RuntimeError):
    """An engine failed on a request (its stderr is in the message)."""


_SENTENCE = re.compile(r"(?<=[.!?;:])\s+")
_MAX_SEGMENT = 240
CUT_GAP_MS = 40  # silence at a cut made inside a phrase (see Backend.joint)


def split_sentences(text):
    """Split text into sentences (and long sentences at commas) for engines
    that synthesize a whole segment before returning any audio."""
    out = []
    for s in _SENTENCE.split(text.strip()):
        s = s.strip()
        while len(s) > _MAX_SEGMENT:
            cut = s.rfind(",", 0, _MAX_SEGMENT)
            if cut <= 0:
                cut = s.rfind(" ", 0, _MAX_SEGMENT)
            if cut <= 0:
                cut = _MAX_SEGMENT
            out.append(s[: cut + 1].strip())
            s = s[cut + 1 :].strip()
        if s:
            out.append(s)
    return out


async def _run(argv, stdin=None):
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await proc.communicate(stdin)
    except asyncio.CancelledError:
        if proc.returncode is None:
            proc.kill()
        raise
    if proc.returncode != 0:
        raise SynthesisError("%s exited with %d: %s" % (argv[0], proc.returncode, err.decode(errors="replace")[-500:]))
    return out


# Words a first phrase should not end on: cutting after them breaks a
# phrase where no speaker would pause ("reads any | text").
_FUNCTION_WORDS = frozenset("""a an the any some this that these those my your our their his her its
    of to in on at by for from with into over under about as and or but nor so if than then
    is are was were be been am will would can could shall should may might must do does did
    has have had not no very more most such""".split())
_CLAUSE_END = re.compile(r"[,;:]$")

# Kinds of joint between two segments of a stream.
SENTENCE, CLAUSE, CUT = "sentence", "clause", "cut"


def first_phrase_cut(sentence, max_words):
    """Where to end the first phrase of a stream: the number of words of
    sentence before the cut, or 0 for no cut, and the joint's kind. The
    phrase ends at the first clause punctuation when that comes within
    max_words words, otherwise after at most max_words words, not on a
    function word; a sentence a cut would leave only a word or two after is
    not cut."""
    words = sentence.split()
    if max_words < 1 or len(words) <= max_words + 2:
        return 0, None
    for i, w in enumerate(words[:max_words]):
        if _CLAUSE_END.search(w):
            return i + 1, CLAUSE
    for k in range(max_words, 1, -1):
        if words[k - 1].lower().strip("\"'()") not in _FUNCTION_WORDS:
            return k, CUT
    return max_words, CUT


def stream_segments(text, first_words):
    """The segments of a stream and the joint after each (None after the
    last): sentences, with the first sentence's first phrase split off when
    first_words > 0 so that its audio is ready after a few words."""
    sentences = split_sentences(text)
    segs = [[s, SENTENCE] for s in sentences]
    if segs:
        segs[-1][1] = None
    if segs and first_words > 0:
        k, kind = first_phrase_cut(segs[0][0], first_words)
        if k:
            words = segs[0][0].split()
            segs[0:1] = [[" ".join(words[:k]), kind], [" ".join(words[k:]), segs[0][1]]]
    return [tuple(s) for s in segs]


class Backend:
    """A speech engine. Subclasses implement voices() and synthesize_segment();
    stream() yields PCM chunks (16-bit mono at voice.sample_rate) and by
    default synthesizes segment by segment, so the first chunk is ready
    after the first segment: a sentence, or with first_words > 0 the first
    phrase of at most that many words (streaming answers use that)."""

    name = ""
    streams_natively = False
    ssml = False

    def voices(self):
        raise NotImplementedError

    async def synthesize_segment(self, text, voice, prosody, speed):
        """PCM of one sentence (or phrase)."""
        raise NotImplementedError

    def joint(self, kind, voice, prosody, speed):
        """The silence between two segments joined by kind. Between
        sentences it is the preset's pause; inside a sentence the edges of
        the engine's audio are trimmed (stream() does that) and this is the
        pause a speaker makes at a comma (half the preset's) or, at a cut
        made only to start sooner, a breath-short gap."""
        ms = {SENTENCE: prosody.pause_ms, CLAUSE: prosody.pause_ms / 2.0, CUT: CUT_GAP_MS}[kind]
        return audio.silence(voice.sample_rate, ms / speed)

    async def stream(self, text, voice, prosody, speed, first_words=0):
        segments = stream_segments(text, first_words)
        if not segments:
            return

        def start(seg):
            return asyncio.ensure_future(self.synthesize_segment(seg[0], voice, prosody, speed))

        nxt = start(segments[0])
        try:
            for i, (_, kind) in enumerate(segments):
                pcm = await nxt
                # The next segment is synthesized while this one is sent.
                nxt = start(segments[i + 1]) if i + 1 < len(segments) else None
                before = segments[i - 1][1] if i > 0 else None
                if before in (CLAUSE, CUT):
                    pcm = audio.trim_silence(pcm, voice.sample_rate, leading=True)
                if kind in (CLAUSE, CUT):
                    pcm = audio.trim_silence(pcm, voice.sample_rate, trailing=True)
                if before is not None:
                    yield self.joint(before, voice, prosody, speed)
                yield audio.gain(pcm, prosody.volume)
        finally:
            if nxt is not None and not nxt.done():
                nxt.cancel()


class Flite(Backend):
    """flite's clustergen voices. Rate maps to duration_stretch, pitch and
    pitch range to int_f0_target_mean and int_f0_target_stddev (relative to
    the voice's measured defaults below), volume to a gain, pauses to silence
    between sentences."""

    name = "flite"
    # id: (language, gender, description, base F0 mean Hz, base F0 stddev Hz)
    KNOWN = {
        "slt": ("en-US", "female", "US English, female (CMU ARCTIC slt)", 170.0, 25.0),
        "rms": ("en-US", "male", "US English, male (CMU ARCTIC rms)", 110.0, 15.0),
        "awb": ("en-GB", "male", "Scottish English, male (CMU ARCTIC awb)", 125.0, 20.0),
        "kal16": ("en-US", "male", "US English, male (kal, 16 kHz diphone)", 105.0, 15.0),
    }

    def __init__(self, binary="flite"):
        self.binary = shutil.which(binary)

    def voices(self):
        if not self.binary:
            return []
        return [Voice(v, self.name, k[0], 16000, k[1], k[2], v) for v, k in self.KNOWN.items()]

    async def synthesize_segment(self, text, voice, prosody, speed):
        _, _, _, mean, std = self.KNOWN[voice.engine_voice]
        argv = [
            self.binary, "-voice", voice.engine_voice,
            "--setf", "duration_stretch=%.3f" % (1.0 / (prosody.rate * speed)),
            "--setf", "int_f0_target_mean=%.1f" % (mean * prosody.pitch),
            "--setf", "int_f0_target_stddev=%.1f" % (std * prosody.pitch_range),
            "-t", text, "-o", "/dev/stdout",
        ]
        rate, _, pcm = audio.split_wav(await _run(argv))
        if rate != voice.sample_rate:
            raise SynthesisError("flite wrote %d Hz, expected %d" % (rate, voice.sample_rate))
        return pcm


class Espeak(Backend):
    """espeak-ng: formant synthesis, fast, streams while it speaks and reads
    SSML. A preset becomes an SSML <prosody rate pitch range> around the
    text with <break> between sentences; volume is a gain."""

    name = "espeak-ng"
    streams_natively = True
    ssml = True
    KNOWN = {
        "en-us": ("en-US", "male", "US English (espeak-ng)"),
        "en-gb": ("en-GB", "male", "British English (espeak-ng)"),
        "de": ("de", "male", "German (espeak-ng)"),
        "fr": ("fr", "male", "French (espeak-ng)"),
        "es": ("es", "male", "Spanish (espeak-ng)"),
    }

    def __init__(self, binary="espeak-ng"):
        self.binary = shutil.which(binary)

    def voices(self):
        if not self.binary:
            return []
        return [Voice("espeak-" + v, self.name, k[0], 22050, k[1], k[2], v) for v, k in self.KNOWN.items()]

    def ssml_for(self, text, prosody, speed):
        if text.lstrip().startswith("<speak"):
            return text  # the caller's own SSML
        brk = '<break time="%dms"/>' % int(prosody.pause_ms / speed)
        body = brk.join(escape(s) for s in split_sentences(text))
        return '<speak><prosody rate="%d%%" pitch="%+d%%" range="%+d%%">%s</prosody></speak>' % (
            round(100 * prosody.rate * speed), round(100 * (prosody.pitch - 1)),
            round(100 * (prosody.pitch_range - 1)), body)

    async def stream(self, text, voice, prosody, speed, first_words=0):
        # espeak-ng streams while it speaks: its first chunk comes early
        # without splitting the text (first_words is not needed).
        proc = await asyncio.create_subprocess_exec(
            self.binary, "-m", "--stdout", "-v", voice.engine_voice, "--stdin",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        proc.stdin.write(self.ssml_for(text, prosody, speed).encode())
        proc.stdin.close()
        buf, started, carry = b"", False, b""
        try:
            while True:
                chunk = await proc.stdout.read(8192)
                if not chunk:
                    break
                if not started:
                    buf += chunk
                    head = audio.parse_wav_header(buf)
                    if head is None:
                        continue
                    rate, _, off = head
                    if rate != voice.sample_rate:
                        raise SynthesisError("espeak-ng wrote %d Hz, expected %d" % (rate, voice.sample_rate))
                    chunk, started = buf[off:], True
                chunk = carry + chunk
                cut = len(chunk) - (len(chunk) % 2)
                chunk, carry = chunk[:cut], chunk[cut:]
                if chunk:
                    yield audio.gain(chunk, prosody.volume)
            err = await proc.stderr.read()
            if await proc.wait() != 0:
                raise SynthesisError("espeak-ng exited with %d: %s" % (proc.returncode, err.decode(errors="replace")[-500:]))
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


class Festival(Backend):
    """festival with the HTS voice cmu_us_slt_arctic_hts (package
    festvox-us-slt-hts). festival exposes no simple pitch control for HTS
    voices: presets apply rate (Duration_Stretch), volume and pauses only."""

    name = "festival"
    VOICE_DIRS = ["/usr/share/festival/voices/us/cmu_us_slt_arctic_hts"]

    def __init__(self, binary="text2wave"):
        self.binary = shutil.which(binary)

    def voices(self):
        if not self.binary or not any(os.path.isdir(d) for d in self.VOICE_DIRS):
            return []
        return [Voice("festival-slt-hts", self.name, "en-US", 32000, "female",
                      "US English, female (festival HTS, CMU ARCTIC slt)", "cmu_us_slt_arctic_hts")]

    async def synthesize_segment(self, text, voice, prosody, speed):
        stretch = 1.0 / (prosody.rate * speed)
        argv = [self.binary, "-eval", "(voice_%s)" % voice.engine_voice,
                "-eval", "(Parameter.set 'Duration_Stretch %.3f)" % stretch, "-o", "/dev/stdout"]
        rate, _, pcm = audio.split_wav(await _run(argv, text.encode()))
        if rate != voice.sample_rate:
            raise SynthesisError("festival wrote %d Hz, expected %d" % (rate, voice.sample_rate))
        return pcm


# Neural models the seed named. None has inference code in this app: they are
# never listed, and a request naming one gets a 4xx with the reason below.
NEURAL = ("kyutai", "orpheus", "fastspeech2", "f5-tts")


def neural_reason(name, weights):
    """Why the neural model `name` is not available, given configured weights paths."""
    path = (weights or {}).get(name)
    if not path:
        return "model %r is not loaded: no weights configured (neural_models.%s)" % (name, name)
    if not os.path.exists(path):
        return "model %r is not loaded: its weights are not at %s" % (name, path)
    return "model %r is not loaded: weights are at %s but this service has no inference code for it" % (name, path)


def default_backends():
    """Every backend of this module; each lists only voices present here."""
    return [Flite(), Espeak(), Festival()]
