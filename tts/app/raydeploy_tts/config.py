"""The service's settings: the `args` of its Serve application (or the
command line of `python3 -m raydeploy_tts`). Unknown keys are refused."""

import dataclasses


@dataclasses.dataclass
class Config:
    voices: list = dataclasses.field(default_factory=list)  # enabled voice ids; empty = every voice present
    default_voice: str = "slt"
    max_text_chars: int = 2000
    max_concurrency: int = 4  # syntheses running at once in one replica
    max_queue: int = 64  # requests waiting for a slot before 503
    audio_ttl_s: int = 600  # how long an audio_url of /synthesize stays valid
    audio_cache_bytes: int = 64 << 20
    neural_models: dict = dataclasses.field(default_factory=dict)  # name -> weights path
    # Streaming answers synthesize the first phrase of at most this many
    # words alone, so its audio goes out early (0: whole sentences).
    stream_first_words: int = 4

    @classmethod
    def from_dict(cls, d):
        d = dict(d or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError("unknown tts setting(s): %s (known: %s)" % (", ".join(unknown), ", ".join(sorted(known))))
        cfg = cls(**d)
        cfg.check()
        return cfg

    def check(self):
        def positive(name):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError("tts setting %s: want a positive integer, got %r" % (name, v))

        for n in ("max_text_chars", "max_concurrency", "max_queue", "audio_ttl_s", "audio_cache_bytes"):
            positive(n)
        v = self.stream_first_words
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ValueError("tts setting stream_first_words: want 0 or a positive integer, got %r" % (v,))
        if not isinstance(self.voices, list) or not all(isinstance(v, str) for v in self.voices):
            raise ValueError("tts setting voices: want a list of voice ids")
        if not isinstance(self.default_voice, str) or not self.default_voice:
            raise ValueError("tts setting default_voice: want a voice id")
        if not isinstance(self.neural_models, dict):
            raise ValueError("tts setting neural_models: want a map of model name to weights path")
