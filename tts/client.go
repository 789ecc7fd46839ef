package tts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/raydeploy/sdk/internal/baseurl"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// BaseURL is the service's address including the route prefix, e.g.
	// "http://10.0.0.1:8000" (Serve's proxy port).
	BaseURL string
	// HTTPClient performs the requests; nil means one with no overall
	// timeout (streams can be long: bound calls with their context).
	HTTPClient *http.Client
}

// Client speaks the TTS service's API. It is safe for concurrent use.
type Client struct {
	base *url.URL
	hc   *http.Client
}

// NewClient checks cfg and returns a Client. It does no I/O.
func NewClient(cfg ClientConfig) (*Client, error) {
	u, err := baseurl.Parse(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("tts: %w", err)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: u, hc: hc}, nil
}

// Sentinel errors an *APIError matches with errors.Is, by the service's code.
var (
	ErrUnknownVoice      = errors.New("tts: unknown voice")
	ErrEmptyText         = errors.New("tts: empty text")
	ErrTextTooLong       = errors.New("tts: text too long")
	ErrBadSpeed          = errors.New("tts: speed out of range")
	ErrUnknownEmotion    = errors.New("tts: unknown emotion")
	ErrModelUnavailable  = errors.New("tts: model not available")
	ErrUnsupportedFormat = errors.New("tts: unsupported output format")
	ErrBusy              = errors.New("tts: service busy")
	ErrNotImplemented    = errors.New("tts: not implemented by the service")
)

var codeErrors = map[string]error{
	"unknown_voice": ErrUnknownVoice, "empty_text": ErrEmptyText, "text_too_long": ErrTextTooLong,
	"bad_speed": ErrBadSpeed, "unknown_emotion": ErrUnknownEmotion, "model_unavailable": ErrModelUnavailable,
	"unsupported_format": ErrUnsupportedFormat, "busy": ErrBusy, "not_implemented": ErrNotImplemented,
}

// APIError is an error answer of the service.
type APIError struct {
	// Method and Path name the request.
	Method, Path string
	// Status is the HTTP status (0 for an error message on a WebSocket).
	Status int
	// Code is the service's machine-readable code ("unknown_voice", ...).
	Code string
	// Detail is the service's explanation.
	Detail string
}

// Error describes the failed request.
func (e *APIError) Error() string {
	s := fmt.Sprintf("tts: %s %s", e.Method, e.Path)
	if e.Status != 0 {
		s += fmt.Sprintf(": %d %s", e.Status, http.StatusText(e.Status))
	}
	if e.Code != "" {
		s += " (" + e.Code + ")"
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Is matches the sentinel error of the answer's code.
func (e *APIError) Is(target error) bool {
	return codeErrors[e.Code] == target && target != nil
}

func apiError(method, path string, status int, body []byte) *APIError {
	e := &APIError{Method: method, Path: path, Status: status}
	var plain struct {
		Detail json.RawMessage `json:"detail"`
		Code   string          `json:"code"`
	}
	var openai struct {
		Error struct {
			Message string `json:"message"`
			Code    string `json:"code"`
		} `json:"error"`
	}
	switch {
	case json.Unmarshal(body, &openai) == nil && openai.Error.Message != "":
		e.Code, e.Detail = openai.Error.Code, openai.Error.Message
	case json.Unmarshal(body, &plain) == nil && plain.Detail != nil:
		e.Code = plain.Code
		var s string
		if json.Unmarshal(plain.Detail, &s) == nil {
			e.Detail = s
		} else {
			e.Detail = string(plain.Detail)
		}
	default:
		e.Detail = strings.TrimSpace(string(body[:min(len(body), 1024)]))
	}
	return e
}

func (c *Client) url(p string) string {
	u := *c.base
	u.Path = c.base.Path + p
	return u.String()
}

// do sends a request and returns the response of a 2xx status (the caller closes it).
func (c *Client) do(ctx context.Context, method, p string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("tts: %s %s: encode: %w", method, p, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(p), body)
	if err != nil {
		return nil, fmt.Errorf("tts: %s %s: %w", method, p, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("tts: %s %s: %w", method, p, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, apiError(method, p, resp.StatusCode, b)
	}
	return resp, nil
}

func (c *Client) doJSON(ctx context.Context, method, p string, in, out any) error {
	resp, err := c.do(ctx, method, p, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(out); err != nil {
		return fmt.Errorf("tts: %s %s: decode answer: %w", method, p, err)
	}
	return nil
}

func (c *Client) doBytes(ctx context.Context, method, p string, in any) ([]byte, http.Header, error) {
	resp, err := c.do(ctx, method, p, in)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("tts: %s %s: read: %w", method, p, err)
	}
	return b, resp.Header, nil
}

// Health is the answer of GET /health.
type Health struct {
	// Status is "healthy".
	Status string `json:"status"`
	// ModelsLoaded are the engines with at least one voice.
	ModelsLoaded []string `json:"models_loaded"`
	// Voices is how many voices the replica has.
	Voices int `json:"voices"`
	// Uptime of the replica, seconds.
	Uptime float64 `json:"uptime"`
	// Running and Waiting are the syntheses in progress and queued.
	Running int `json:"running"`
	Waiting int `json:"waiting"` // requests waiting for a synthesis slot
}

// Health asks GET /health.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	return h, c.doJSON(ctx, http.MethodGet, "/health", nil, &h)
}

// Voice is one voice of GET /models.
type Voice struct {
	// ID is the voice's ID, a Request's VoiceID.
	ID string `json:"id"`
	// Engine is the speech engine that speaks it: "flite", "espeak-ng" or
	// "festival".
	Engine string `json:"engine"`
	// Language is the language it speaks, e.g. "en-US".
	Language string `json:"language"`
	// SampleRate is the sample rate of its audio, in Hz.
	SampleRate int `json:"sample_rate"`
	// Gender is "male" or "female".
	Gender string `json:"gender"`
	// Description says for people what the voice is.
	Description string `json:"description"`
	// StreamsNatively is true when the engine streams while it speaks, rather
	// than sentence by sentence.
	StreamsNatively bool `json:"streams_natively"`
	// SSML is true when the voice accepts SSML text (starting with "<speak").
	SSML bool `json:"ssml"`
}

// Prosody is an emotion preset, relative to the voice's defaults.
type Prosody struct {
	// Rate is the speaking-rate factor (2: twice as fast).
	Rate float64 `json:"rate"`
	// Pitch is the factor of the mean fundamental frequency.
	Pitch float64 `json:"pitch"`
	// PitchRange is the factor of the spread of the fundamental frequency.
	PitchRange float64 `json:"pitch_range"`
	// Volume is the amplitude factor.
	Volume float64 `json:"volume"`
	// PauseMS is the silence between sentences, in milliseconds.
	PauseMS int `json:"pause_ms"`
}

// Models is the answer of GET /models.
type Models struct {
	// AvailableModels are the engines with voices (the seed's field).
	AvailableModels []string `json:"available_models"`
	// PrimaryModel is the default voice's engine.
	PrimaryModel string `json:"primary_model"`
	// FallbackModel is another engine, "" when there is none.
	FallbackModel string `json:"fallback_model"`
	// DefaultVoice is used for voice_id "default".
	DefaultVoice string `json:"default_voice"`
	// Voices lists every voice.
	Voices []Voice `json:"voices"`
	// Emotions maps each emotion to its prosody preset.
	Emotions map[string]Prosody `json:"emotions"`
	// UnavailableModels maps each known but unloaded model to the reason.
	UnavailableModels map[string]string `json:"unavailable_models"`
	// OpenAIVoices maps OpenAI voice names to the voices they select.
	OpenAIVoices map[string]string `json:"openai_voices"`
}

// Voice returns the voice with the given id.
func (m Models) Voice(id string) (Voice, bool) {
	for _, v := range m.Voices {
		if v.ID == id {
			return v, true
		}
	}
	return Voice{}, false
}

// Models asks GET /models.
func (c *Client) Models(ctx context.Context) (Models, error) {
	var m Models
	return m, c.doJSON(ctx, http.MethodGet, "/models", nil, &m)
}

// Request is what to synthesize (the seed's request body). Zero fields take
// the service's defaults.
type Request struct {
	// Text is what to say (required; at most Service.MaxTextChars
	// characters).
	Text string `json:"text"`
	// VoiceID is the voice to speak with (empty or "default": the default
	// voice, or the first that speaks Language).
	VoiceID string `json:"voice_id,omitempty"`
	// Language is the language to speak, e.g. "en-US" or "en"; the voice must
	// speak it (empty: any).
	Language string `json:"language,omitempty"`
	// Speed is the speaking-rate factor, 0.25 to 4 (0: 1).
	Speed float64 `json:"speed,omitempty"`
	// Emotion is a prosody preset of Models.Emotions (empty: "neutral").
	Emotion      string `json:"emotion,omitempty"`
	OutputFormat string `json:"output_format,omitempty"` // "wav" (default) or "pcm"
}

// Result is the answer of POST /synthesize.
type Result struct {
	// AudioURL is the path of the audio on the service (see Audio); it stays
	// valid ExpiresInS seconds.
	AudioURL string `json:"audio_url"`
	// Duration is how long the audio plays, in seconds.
	Duration float64 `json:"duration"`
	// ModelUsed is "<engine>:<the engine's voice name>".
	ModelUsed string `json:"model_used"`
	// ProcessingTime is how long the synthesis took, in seconds.
	ProcessingTime float64 `json:"processing_time"`
	// VoiceID is the voice that spoke.
	VoiceID string `json:"voice_id"`
	// Emotion is the prosody preset used.
	Emotion string `json:"emotion"`
	// SampleRate is the sample rate of the audio, in Hz.
	SampleRate int `json:"sample_rate"`
	// OutputFormat is "wav" or "pcm".
	OutputFormat string `json:"output_format"`
	// ExpiresInS is how long AudioURL stays valid, in seconds.
	ExpiresInS int `json:"expires_in_s"`
}

// Synthesize asks POST /synthesize; the audio is at Result.AudioURL (see Audio).
func (c *Client) Synthesize(ctx context.Context, r Request) (Result, error) {
	var res Result
	return res, c.doJSON(ctx, http.MethodPost, "/synthesize", r, &res)
}

// Audio fetches the audio of a Result (its AudioURL is relative to the service).
func (c *Client) Audio(ctx context.Context, res Result) ([]byte, error) {
	p := res.AudioURL
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("tts: audio_url %q is not a path of the service", p)
	}
	b, _, err := c.doBytes(ctx, http.MethodGet, p, nil)
	return b, err
}

// SynthesizeAudio synthesizes r and fetches and decodes its WAV.
func (c *Client) SynthesizeAudio(ctx context.Context, r Request) (Audio, Result, error) {
	r.OutputFormat = "wav"
	res, err := c.Synthesize(ctx, r)
	if err != nil {
		return Audio{}, res, err
	}
	b, err := c.Audio(ctx, res)
	if err != nil {
		return Audio{}, res, err
	}
	a, err := DecodeWAV(b)
	return a, res, err
}

// Stream is the PCM of POST /synthesize/stream as it arrives.
type Stream struct {
	// Format of the PCM that Read returns.
	Format Format
	body   io.ReadCloser
	buf    []byte // header bytes read past the WAV header
}

// Read reads PCM (16-bit little-endian samples).
func (s *Stream) Read(p []byte) (int, error) {
	if len(s.buf) > 0 {
		n := copy(p, s.buf)
		s.buf = s.buf[n:]
		return n, nil
	}
	return s.body.Read(p)
}

// Close ends the stream.
func (s *Stream) Close() error { return s.body.Close() }

// Stream asks POST /synthesize/stream and returns once the format is known:
// the first chunk has arrived (WAV) or the headers (PCM).
func (c *Client) Stream(ctx context.Context, r Request) (*Stream, error) {
	const p = "/synthesize/stream"
	resp, err := c.do(ctx, http.MethodPost, p, r)
	if err != nil {
		return nil, err
	}
	s := &Stream{body: resp.Body}
	if r.OutputFormat == "pcm" {
		rate, err := strconv.Atoi(resp.Header.Get("X-Sample-Rate"))
		if err != nil || rate <= 0 {
			resp.Body.Close()
			return nil, fmt.Errorf("tts: %s: pcm answer without a valid X-Sample-Rate header", p)
		}
		s.Format = Format{SampleRate: rate, Channels: 1, BitsPerSample: 16}
		return s, nil
	}
	var head []byte
	chunk := make([]byte, 4096)
	for {
		f, off, ok, err := parseWAVHeader(head)
		if err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("tts: %s: %w", p, err)
		}
		if ok {
			s.Format, s.buf = f, head[off:]
			return s, nil
		}
		n, err := resp.Body.Read(chunk)
		head = append(head, chunk[:n]...)
		if err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("tts: %s: stream ended before the WAV header: %w", p, err)
		}
	}
}

// StreamDone is the final message of a WebSocket synthesis.
type StreamDone struct {
	// Chunks is the number of binary audio messages sent (a WAV header not
	// counted).
	Chunks int `json:"chunks"`
	// Bytes is the number of PCM bytes sent (a WAV header not counted).
	Bytes int `json:"bytes"`
	// SampleRate is the sample rate of the PCM, in Hz.
	SampleRate int `json:"sample_rate"`
	// Channels is the number of channels, 1.
	Channels int `json:"channels"`
	// SampleFormat is "s16le": 16-bit little-endian samples.
	SampleFormat string `json:"sample_format"`
	// OutputFormat is "pcm" (the default here) or "wav".
	OutputFormat string `json:"output_format"`
	// VoiceID is the voice that spoke.
	VoiceID string `json:"voice_id"`
	// ModelUsed is "<engine>:<the engine's voice name>".
	ModelUsed string `json:"model_used"`
	// Duration is how long the audio sent plays, in seconds.
	Duration float64 `json:"duration"`
	// FirstChunkS is when the service sent the first chunk, and SynthesisS
	// when the engine finished, both seconds after the request started.
	FirstChunkS float64 `json:"first_chunk_s"`
	SynthesisS  float64 `json:"synthesis_s"` // seconds until the engine finished
}

// WSSession is an open WebSocket to /ws/tts; requests run one after another.
type WSSession struct {
	conn *websocket.Conn
}

// DialWS opens the WebSocket /ws/tts.
func (c *Client) DialWS(ctx context.Context) (*WSSession, error) {
	u := *c.base
	u.Path = c.base.Path + "/ws/tts"
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	conn, _, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{HTTPClient: c.hc})
	if err != nil {
		return nil, fmt.Errorf("tts: websocket %s: %w", u.Path, err)
	}
	conn.SetReadLimit(16 << 20)
	return &WSSession{conn: conn}, nil
}

// Synthesize sends r and calls onChunk with every binary chunk (PCM, or a
// WAV header then PCM when r.OutputFormat is "wav") until the final message.
func (s *WSSession) Synthesize(ctx context.Context, r Request, onChunk func([]byte) error) (StreamDone, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return StreamDone{}, err
	}
	if err := s.conn.Write(ctx, websocket.MessageText, b); err != nil {
		return StreamDone{}, fmt.Errorf("tts: websocket send: %w", err)
	}
	for {
		typ, msg, err := s.conn.Read(ctx)
		if err != nil {
			return StreamDone{}, fmt.Errorf("tts: websocket read: %w", err)
		}
		if typ == websocket.MessageBinary {
			if err := onChunk(msg); err != nil {
				return StreamDone{}, err
			}
			continue
		}
		var m struct {
			Type   string `json:"type"`
			Code   string `json:"code"`
			Detail string `json:"detail"`
		}
		if err := json.Unmarshal(msg, &m); err != nil {
			return StreamDone{}, fmt.Errorf("tts: websocket: bad message: %w", err)
		}
		switch m.Type {
		case "done":
			var d StreamDone
			if err := json.Unmarshal(msg, &d); err != nil {
				return StreamDone{}, fmt.Errorf("tts: websocket: bad final message: %w", err)
			}
			return d, nil
		case "error":
			return StreamDone{}, &APIError{Method: "WS", Path: "/ws/tts", Code: m.Code, Detail: m.Detail}
		default:
			return StreamDone{}, fmt.Errorf("tts: websocket: unexpected message type %q", m.Type)
		}
	}
}

// Close closes the WebSocket.
func (s *WSSession) Close() error { return s.conn.Close(websocket.StatusNormalClosure, "") }

// SpeechRequest is OpenAI's POST /v1/audio/speech body.
type SpeechRequest struct {
	// Model is "tts-1", "tts-1-hd", "gpt-4o-mini-tts" (the default voice's
	// engine) or an engine name ("flite", "espeak-ng", "festival").
	Model string `json:"model"`
	// Input is the text.
	Input string `json:"input"`
	// Voice is a voice id or an OpenAI voice name (see Models.OpenAIVoices).
	Voice string `json:"voice"`
	// Speed is 0.25 to 4 (0 means 1).
	Speed float64 `json:"speed,omitempty"`
	// ResponseFormat is "wav" (default here) or "pcm" (24 kHz 16-bit mono).
	ResponseFormat string `json:"response_format,omitempty"`
	// Instructions are mapped to an emotion preset by keywords ("cheerful" -> happy ...).
	Instructions string `json:"instructions,omitempty"`
}

// Speech asks POST /v1/audio/speech and returns the audio bytes and the
// emotion the instructions were mapped to.
func (c *Client) Speech(ctx context.Context, r SpeechRequest) (audio []byte, emotion string, err error) {
	b, h, err := c.doBytes(ctx, http.MethodPost, "/v1/audio/speech", r)
	if err != nil {
		return nil, "", err
	}
	return b, h.Get("X-Emotion"), nil
}

// WaitHealthy polls /health until it answers or ctx ends.
func (c *Client) WaitHealthy(ctx context.Context, every time.Duration) (Health, error) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		h, err := c.Health(ctx)
		if err == nil && h.Status == "healthy" {
			return h, nil
		}
		select {
		case <-ctx.Done():
			return h, fmt.Errorf("tts: not healthy: %w (last: %v)", ctx.Err(), err)
		case <-t.C:
		}
	}
}
