"""The HTTP and WebSocket API of the TTS service (FastAPI).

Compatible with the seed's API (/health, /models, /synthesize,
/synthesize/stream, /ws/tts, /voice-clone, /docs) plus OpenAI's
POST /v1/audio/speech. Errors are JSON {"detail": ..., "code": ...} with a
4xx status (OpenAI's route answers in OpenAI's error shape)."""

import asyncio
import base64
import collections
import json
import time
from typing import Optional

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Extra, StrictFloat, StrictInt, StrictStr, ValidationError
from typing import Union

from . import audio, engines
from .config import Config

FORMATS = ("wav", "pcm")
MIN_SPEED, MAX_SPEED = 0.25, 4.0
OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
OPENAI_VOICES = {"alloy": "slt", "nova": "slt", "shimmer": "slt", "echo": "rms", "onyx": "kal16", "fable": "awb"}
OPENAI_PCM_RATE = 24000  # OpenAI's pcm format: 24 kHz 16-bit mono
INSTRUCTION_WORDS = [  # first match wins
    ("excited", ("excit", "enthusias", "energetic", "thrill")),
    ("happy", ("happy", "cheer", "joy", "glad", "upbeat")),
    ("sad", ("sad", "sorrow", "melanchol", "gloom", "somber")),
    ("angry", ("angry", "anger", "furious", "mad", "irritat")),
    ("calm", ("calm", "sooth", "relax", "gentle", "peaceful")),
    ("neutral", ("neutral", "plain", "flat")),
]

Number = Union[StrictFloat, StrictInt]


class ApiError(Exception):
    def __init__(self, status, code, detail, param=None):
        super().__init__(detail)
        self.status, self.code, self.detail, self.param = status, code, detail, param


class SynthesizeRequest(BaseModel):
    """The seed's request body."""

    text: StrictStr
    voice_id: StrictStr = "default"
    language: Optional[StrictStr] = None
    speed: Number = 1.0
    emotion: StrictStr = "neutral"
    output_format: StrictStr = "wav"

    class Config:
        extra = Extra.forbid


class SpeechRequest(BaseModel):
    """OpenAI's POST /v1/audio/speech body."""

    model: StrictStr
    input: StrictStr
    voice: StrictStr
    speed: Number = 1.0
    response_format: StrictStr = "wav"
    instructions: Optional[StrictStr] = None
    stream_format: Optional[StrictStr] = None

    class Config:
        extra = Extra.forbid


def _validation_detail(err):
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if p != "body")
        msg = "unknown field" if e["type"] == "value_error.extra" else e["msg"]
        parts.append("%s: %s" % (loc or "body", msg))
    return "; ".join(parts)


class Job:
    """One resolved request: what to say, with which voice and prosody."""

    def __init__(self, text, voice, backend, emotion, speed, fmt):
        self.text, self.voice, self.backend = text, voice, backend
        self.emotion, self.speed, self.fmt = emotion, speed, fmt
        self.prosody = engines.PRESETS[emotion]

    def token(self, ttl):
        d = {"t": self.text, "v": self.voice.id, "e": self.emotion, "s": self.speed, "f": self.fmt,
             "x": int(time.time()) + ttl}
        return base64.urlsafe_b64encode(json.dumps(d, separators=(",", ":")).encode()).decode().rstrip("=")


class Limiter:
    """At most `slots` syntheses at once, at most `queue` waiting."""

    def __init__(self, slots, queue):
        self.sem = asyncio.Semaphore(slots)
        self.queue, self.waiting, self.running = queue, 0, 0

    def check(self):
        """Raise the 503 that entering would raise now. A stream checks
        before its answer starts: an error after that could only cut it."""
        if self.waiting >= self.queue:
            raise ApiError(503, "busy", "too many requests waiting (%d); retry later" % self.waiting)

    async def __aenter__(self):
        self.check()
        self.waiting += 1
        try:
            await self.sem.acquire()
        finally:
            self.waiting -= 1
        self.running += 1

    async def __aexit__(self, *exc):
        self.running -= 1
        self.sem.release()


class Service:
    """The state of one replica: backends, voices, limits and the audio cache."""

    def __init__(self, cfg=None, backends=None):
        self.cfg = cfg or Config()
        self.backends = backends
        self.ready = False
        self.started = time.time()

    def init(self):
        if self.ready:
            return
        cfg = self.cfg
        self.backends = self.backends if self.backends is not None else engines.default_backends()
        self.voices, self.backend_of = collections.OrderedDict(), {}
        for b in self.backends:
            for v in b.voices():
                if cfg.voices and v.id not in cfg.voices:
                    continue
                self.voices[v.id] = v
                self.backend_of[v.id] = b
        missing = [v for v in cfg.voices if v not in self.voices]
        if missing:
            raise RuntimeError("configured voices not available on this machine: %s (available: %s)"
                               % (", ".join(missing), ", ".join(self.voices) or "none"))
        if cfg.default_voice not in self.voices:
            raise RuntimeError("default voice %r is not available (available: %s)"
                               % (cfg.default_voice, ", ".join(self.voices) or "none"))
        self.unavailable = {n: engines.neural_reason(n, cfg.neural_models) for n in engines.NEURAL}
        self.limiter = Limiter(cfg.max_concurrency, cfg.max_queue)
        self.cache, self.cache_bytes = collections.OrderedDict(), 0
        self.ready = True

    # --- resolving requests ---------------------------------------------

    def engines_loaded(self):
        seen = []
        for v in self.voices.values():
            if v.engine not in seen:
                seen.append(v.engine)
        return seen

    def resolve(self, text, voice_id, language, speed, emotion, fmt, formats=FORMATS):
        if not text.strip():
            raise ApiError(400, "empty_text", "text: must not be empty", "text")
        if len(text) > self.cfg.max_text_chars:
            raise ApiError(413, "text_too_long", "text: at most %d characters, got %d" % (self.cfg.max_text_chars, len(text)), "text")
        if isinstance(speed, bool) or not (MIN_SPEED <= float(speed) <= MAX_SPEED):
            raise ApiError(400, "bad_speed", "speed: must be between %g and %g, got %r" % (MIN_SPEED, MAX_SPEED, speed), "speed")
        if emotion not in engines.PRESETS:
            raise ApiError(400, "unknown_emotion", "emotion: unknown %r (known: %s)" % (emotion, ", ".join(engines.PRESETS)), "emotion")
        if fmt not in formats:
            raise ApiError(400, "unsupported_format", "output format %r is not supported (supported: %s)" % (fmt, ", ".join(formats)), "output_format")
        voice = self.pick_voice(voice_id, language)
        backend = self.backend_of[voice.id]
        if text.lstrip().startswith("<speak") and not backend.ssml:
            raise ApiError(400, "ssml_unsupported", "SSML input needs an espeak-ng voice; %s is a %s voice" % (voice.id, voice.engine), "text")
        return Job(text, voice, backend, emotion, float(speed), fmt)

    def pick_voice(self, voice_id, language):
        if voice_id in self.unavailable:
            raise ApiError(400, "model_unavailable", self.unavailable[voice_id], "voice_id")
        lang = (language or "").lower()

        def speaks(v):
            return not lang or v.language.lower() == lang or v.language.lower().split("-")[0] == lang

        if voice_id in ("", "default"):
            default = self.voices[self.cfg.default_voice]
            if speaks(default):
                return default
            for v in self.voices.values():
                if speaks(v):
                    return v
            raise ApiError(400, "unknown_language", "language: no voice speaks %r" % language, "language")
        v = self.voices.get(voice_id)
        if v is None:
            raise ApiError(400, "unknown_voice", "voice_id: unknown voice %r (known: %s)" % (voice_id, ", ".join(self.voices)), "voice_id")
        if not speaks(v):
            raise ApiError(400, "unknown_language", "language: voice %s speaks %s, not %s" % (v.id, v.language, language), "language")
        return v

    # --- synthesis --------------------------------------------------------

    async def pcm_chunks(self, job, stats=None, streaming=False):
        """PCM chunks of job, holding a concurrency slot while it runs. A
        streaming answer splits off the first phrase (cfg.stream_first_words)
        so that its first chunk is ready sooner; a whole answer keeps whole
        sentences, the engines' best prosody."""
        first_words = self.cfg.stream_first_words if streaming else 0
        async with self.limiter:
            t0 = time.monotonic()
            try:
                async for chunk in job.backend.stream(job.text, job.voice, job.prosody, job.speed, first_words):
                    if stats is not None and "first_chunk_s" not in stats:
                        stats["first_chunk_s"] = time.monotonic() - t0
                    yield chunk
            except engines.SynthesisError as e:
                raise ApiError(500, "engine_failed", str(e))
            if stats is not None:
                stats["synthesis_s"] = time.monotonic() - t0

    async def pcm(self, job):
        parts = [c async for c in self.pcm_chunks(job)]
        return b"".join(parts)

    def remember(self, token, data):
        self.cache[token] = data
        self.cache_bytes += len(data)
        while self.cache_bytes > self.cfg.audio_cache_bytes and self.cache:
            _, old = self.cache.popitem(last=False)
            self.cache_bytes -= len(old)

    def encode(self, job, pcm, rate=None):
        rate = rate or job.voice.sample_rate
        return audio.wav_bytes(pcm, rate) if job.fmt == "wav" else pcm


MEDIA = {"wav": "audio/wav", "pcm": "audio/L16"}


def _format_headers(rate, fmt):
    h = {"X-Sample-Rate": str(rate), "X-Channels": "1", "X-Sample-Format": "s16le"}
    if fmt == "pcm":
        h["Content-Type"] = "audio/L16; rate=%d; channels=1" % rate
    return h


def create_app(cfg=None, backends=None):
    """The FastAPI application. cfg is a Config (defaults when None)."""
    svc = Service(cfg, backends)
    app = FastAPI(title="raydeploy TTS", version="1.0",
                  description="Text-to-speech with flite, espeak-ng and festival. Emotion is prosody "
                              "(rate, pitch, pitch range, volume, pauses), not a neural emotion model.")
    app.state.tts = svc

    @app.on_event("startup")
    async def _startup():
        svc.init()

    @app.exception_handler(ApiError)
    async def _api_error(request, exc):
        if request.url.path.startswith("/v1/"):
            return JSONResponse({"error": {"message": exc.detail, "type": "invalid_request_error",
                                           "param": exc.param, "code": exc.code}}, exc.status)
        return JSONResponse({"detail": exc.detail, "code": exc.code}, exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc):
        return await _api_error(request, ApiError(400, "bad_request", _validation_detail(exc)))

    @app.get("/")
    async def root():
        return {"service": "raydeploy TTS", "docs": "/docs", "endpoints": [
            "/health", "/models", "/synthesize", "/synthesize/stream", "/ws/tts", "/v1/audio/speech", "/voice-clone"]}

    @app.get("/health")
    async def health():
        svc.init()
        body = {"status": "healthy", "models_loaded": svc.engines_loaded(), "voices": len(svc.voices),
                "gpu_memory_used": None, "uptime": round(time.time() - svc.started, 3),
                "running": svc.limiter.running, "waiting": svc.limiter.waiting}
        return body

    @app.get("/models")
    async def models():
        svc.init()
        loaded = svc.engines_loaded()
        default = svc.voices[svc.cfg.default_voice]
        return {
            "available_models": loaded,
            "primary_model": default.engine,
            "fallback_model": next((e for e in loaded if e != default.engine), None),
            "default_voice": default.id,
            "voices": [{"id": v.id, "engine": v.engine, "language": v.language, "sample_rate": v.sample_rate,
                        "gender": v.gender, "description": v.description,
                        "streams_natively": svc.backend_of[v.id].streams_natively,
                        "ssml": svc.backend_of[v.id].ssml} for v in svc.voices.values()],
            "emotions": {k: {"rate": p.rate, "pitch": p.pitch, "pitch_range": p.pitch_range,
                             "volume": p.volume, "pause_ms": p.pause_ms} for k, p in engines.PRESETS.items()},
            "emotion_note": "emotions are prosody presets (rate, pitch, pitch range, volume, pauses), not a neural emotion model",
            "unavailable_models": svc.unavailable,
            "openai_voices": {k: v for k, v in OPENAI_VOICES.items() if v in svc.voices},
            "limits": {"max_text_chars": svc.cfg.max_text_chars, "max_concurrency": svc.cfg.max_concurrency,
                       "min_speed": MIN_SPEED, "max_speed": MAX_SPEED, "audio_ttl_s": svc.cfg.audio_ttl_s},
        }

    def job_of(req):
        svc.init()
        return svc.resolve(req.text, req.voice_id, req.language, req.speed, req.emotion, req.output_format)

    @app.post("/synthesize")
    async def synthesize(req: SynthesizeRequest):
        job = job_of(req)
        t0 = time.monotonic()
        pcm = await svc.pcm(job)
        took = time.monotonic() - t0
        token = job.token(svc.cfg.audio_ttl_s)
        svc.remember(token, svc.encode(job, pcm))
        return {"audio_url": "/audio/%s.%s" % (token, job.fmt), "duration": round(audio.duration(pcm, job.voice.sample_rate), 3),
                "model_used": "%s:%s" % (job.voice.engine, job.voice.engine_voice), "processing_time": round(took, 4),
                "voice_id": job.voice.id, "emotion": job.emotion, "sample_rate": job.voice.sample_rate,
                "output_format": job.fmt, "expires_in_s": svc.cfg.audio_ttl_s}

    @app.get("/audio/{name}")
    async def get_audio(name: str):
        svc.init()
        token, _, ext = name.rpartition(".")
        data = svc.cache.get(token)
        try:
            d = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            expires = int(d["x"])
        except Exception:
            raise ApiError(404, "not_found", "no such audio")
        if time.time() > expires:
            svc.cache.pop(token, None)
            raise ApiError(410, "expired", "this audio expired; synthesize it again")
        if ext != d.get("f"):
            raise ApiError(404, "not_found", "no such audio")
        if data is None:
            # Made by another replica (or evicted): the engines are
            # deterministic, so the same request gives the same audio.
            job = svc.resolve(d["t"], d["v"], None, d["s"], d["e"], d["f"])
            data = svc.encode(job, await svc.pcm(job))
            svc.remember(token, data)
        return Response(data, media_type=MEDIA[ext])

    @app.post("/synthesize/stream")
    async def synthesize_stream(req: SynthesizeRequest):
        job = job_of(req)
        svc.limiter.check()
        rate = job.voice.sample_rate

        async def body():
            if job.fmt == "wav":
                yield audio.wav_header(rate)
            async for chunk in svc.pcm_chunks(job, streaming=True):
                yield chunk

        headers = _format_headers(rate, job.fmt)
        media = headers.pop("Content-Type", MEDIA[job.fmt])
        return StreamingResponse(body(), media_type=media, headers=headers)

    @app.websocket("/ws/tts")
    async def ws_tts(ws: WebSocket):
        await ws.accept()
        svc.init()
        try:
            while True:
                raw = await ws.receive_text()
                try:
                    try:
                        d = json.loads(raw)
                        if not isinstance(d, dict):
                            raise ApiError(400, "bad_request", "request must be a JSON object")
                        d.setdefault("output_format", "pcm")
                        req = SynthesizeRequest(**d)
                    except (ValueError, ValidationError) as e:
                        detail = _validation_detail(e) if isinstance(e, ValidationError) else "request is not JSON: %s" % e
                        raise ApiError(400, "bad_request", detail)
                    job = job_of(req)
                    stats, n, size = {}, 0, 0
                    t0 = time.monotonic()
                    if job.fmt == "wav":
                        await ws.send_bytes(audio.wav_header(job.voice.sample_rate))
                    async for chunk in svc.pcm_chunks(job, stats, streaming=True):
                        if "first_sent_s" not in stats:
                            stats["first_sent_s"] = time.monotonic() - t0
                        await ws.send_bytes(chunk)
                        n, size = n + 1, size + len(chunk)
                    await ws.send_text(json.dumps({
                        "type": "done", "chunks": n, "bytes": size, "sample_rate": job.voice.sample_rate,
                        "channels": 1, "sample_format": "s16le", "output_format": job.fmt, "voice_id": job.voice.id,
                        "model_used": "%s:%s" % (job.voice.engine, job.voice.engine_voice),
                        "duration": round(size / (2.0 * job.voice.sample_rate), 3),
                        "first_chunk_s": round(stats.get("first_sent_s", 0), 4),
                        "synthesis_s": round(stats.get("synthesis_s", 0), 4)}))
                except ApiError as e:
                    await ws.send_text(json.dumps({"type": "error", "code": e.code, "detail": e.detail}))
        except WebSocketDisconnect:
            return

    @app.post("/v1/audio/speech")
    async def openai_speech(req: SpeechRequest):
        svc.init()
        voice = OPENAI_VOICES.get(req.voice, req.voice)
        if req.model in engines.NEURAL:
            raise ApiError(400, "model_unavailable", svc.unavailable[req.model], "model")
        engine_names = svc.engines_loaded()
        if req.model not in OPENAI_MODELS and req.model not in engine_names:
            raise ApiError(400, "unknown_model", "model: unknown %r (known: %s)" % (req.model, ", ".join(OPENAI_MODELS + tuple(engine_names))), "model")
        if req.model in engine_names and voice in svc.voices and svc.voices[voice].engine != req.model:
            raise ApiError(400, "unknown_voice", "voice %r is not a %s voice" % (req.voice, req.model), "voice")
        if req.stream_format not in (None, "audio"):
            raise ApiError(400, "unsupported_format", "stream_format: only 'audio' is supported", "stream_format")
        emotion = "neutral"
        if req.instructions:
            low = req.instructions.lower()
            emotion = next((e for e, words in INSTRUCTION_WORDS if any(w in low for w in words)), "neutral")
        job = svc.resolve(req.input, voice, None, req.speed, emotion, req.response_format)
        pcm = await svc.pcm(job)
        if job.fmt == "pcm":
            headers = _format_headers(OPENAI_PCM_RATE, "wav")
            headers["X-Emotion"] = emotion
            return Response(audio.resample(pcm, job.voice.sample_rate, OPENAI_PCM_RATE), media_type="audio/pcm",
                            headers=headers)
        return Response(audio.wav_bytes(pcm, job.voice.sample_rate), media_type="audio/wav",
                        headers={"X-Emotion": emotion})

    @app.post("/voice-clone")
    async def voice_clone(request: Request):
        raise ApiError(501, "not_implemented",
                       "voice cloning needs a backend that can clone a voice, and none is configured: "
                       "flite, espeak-ng and festival speak only their built-in voices")

    return app
