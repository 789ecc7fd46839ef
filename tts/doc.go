// Package tts deploys a text-to-speech service on Ray Serve and is a Go
// client for its API.
//
// The service is a Python application (raydeploy_tts, embedded here, see
// AppFiles) over real speech engines from Debian's main archive, behind one
// Backend interface in the app: flite (voices slt, rms, awb, kal16; slt is the
// default), espeak-ng (fast, streams while it speaks, SSML, several languages)
// and festival (the HTS voice festival-slt-hts). GET /models lists each voice
// with its engine, language and sample rate. The seed's neural models
// (kyutai, orpheus, fastspeech2, f5-tts) have no inference code in the app:
// they are never listed, and a request naming one gets a 400 that says why.
// Voice cloning answers 501.
//
// Emotion is prosody, not a neural emotion model. Each preset sets a
// speaking rate, a pitch level, a pitch range, a volume and the pause between
// sentences, relative to the voice's own defaults:
//
//	emotion  rate  pitch  range  volume  pause
//	neutral  1.00  1.00   1.0    1.00    250 ms
//	happy    1.10  1.15   1.6    1.10    200 ms
//	sad      0.80  0.85   0.5    0.70    450 ms
//	angry    1.10  1.05   1.4    1.25    150 ms
//	calm     0.90  0.95   0.7    0.85    350 ms
//	excited  1.25  1.30   1.9    1.20    120 ms
//
// flite applies all five (duration_stretch, int_f0_target_mean and
// int_f0_target_stddev, a gain, silences); espeak-ng gets an SSML <prosody>
// with <break>s and a gain; festival's HTS voice applies rate, volume and
// pauses only.
//
// The API (compatible with the seed's): GET /health, GET /models, POST
// /synthesize (JSON answer with an audio_url valid for a bounded time),
// POST /synthesize/stream (chunked: a WAV header of unknown length then PCM,
// or raw PCM with output_format "pcm"), WebSocket /ws/tts (a JSON request in,
// binary PCM chunks out, then a JSON message of type "done"), POST
// /v1/audio/speech (OpenAI's speech API: wav, or pcm at 24 kHz), POST
// /voice-clone (501), GET /docs. Bad input gets a 4xx with {"detail","code"}.
//
// Streaming answers start early: engines that synthesize a whole segment
// before returning audio (flite, festival) get the first phrase alone (up
// to the first comma within Service.FirstPhraseWords, the app setting
// stream_first_words, default 4 words, else a cut after at most that many
// words, not on a function word), then the rest of the text sentence by
// sentence, each synthesized while the previous is sent. At the cut the
// engine's edge silences are trimmed and a pause is put back (half the
// preset's pause at a comma, 40 ms elsewhere); the format and rate never
// change within a stream. /synthesize keeps whole sentences.
//
// Service is the application as a value: it generates the Serve config
// (autoscaling_config only, never with num_replicas), plans, deploys it
// through the Ray dashboard's Serve REST API, waits for RUNNING and removes
// only its own application. Client speaks the API; Gate is the functional
// check used in validation.
package tts
