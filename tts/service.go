package tts

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Autoscaling is the Serve autoscaling of the TTS deployment. Ray Serve
// refuses num_replicas together with autoscaling_config, so the Service sets
// only autoscaling_config; a fixed replica count is MinReplicas == MaxReplicas.
type Autoscaling struct {
	// MinReplicas and MaxReplicas bound the replica count (defaults 1 and 2).
	MinReplicas, MaxReplicas int
	// InitialReplicas is the count at deploy time; 0 means MinReplicas.
	InitialReplicas int
	// TargetOngoingRequests per replica drives scaling (default 2).
	TargetOngoingRequests float64
	// UpscaleDelay and DownscaleDelay (defaults 30 s and 600 s, Ray's).
	UpscaleDelay, DownscaleDelay time.Duration
}

// Service is the TTS application on Ray Serve as a value. Zero fields take
// the defaults of WithDefaults.
type Service struct {
	// Name is the Serve application name (default "tts"). Deploy and Remove
	// touch only the application of this name.
	Name string
	// RoutePrefix is the HTTP prefix of the app on Serve's proxy (default "/").
	RoutePrefix string
	// HTTPPort is the Serve proxies' port (default 8000).
	HTTPPort int
	// Voices restricts the voices; empty means every voice the image has.
	Voices []string
	// DefaultVoice answers voice_id "default" (default "slt", flite).
	DefaultVoice string
	// Autoscaling of the deployment's replicas.
	Autoscaling Autoscaling
	// MaxOngoingRequests is Serve's per-replica cap of requests in flight (default 8).
	MaxOngoingRequests int
	// CPUsPerReplica (default 1) and GPUsPerReplica (default 0) are the
	// replica's Ray resources.
	CPUsPerReplica, GPUsPerReplica float64
	// MaxTextChars bounds a request's text (default 2000).
	MaxTextChars int
	// MaxConcurrency is how many syntheses one replica runs at once (default 4).
	MaxConcurrency int
	// AudioTTL is how long an audio_url of /synthesize stays valid (default 10 min).
	AudioTTL time.Duration
	// FirstPhraseWords is the most words of the first phrase a streaming
	// answer (/synthesize/stream, /ws/tts) synthesizes alone, which decides
	// its time to first byte: the app ends that phrase at the first comma,
	// semicolon or colon within this many words, else after at most this
	// many (not on a word like "the"), and sends its audio while the rest is
	// synthesized. Fewer words start sooner; the cut costs a little prosody.
	// 0 means DefaultFirstPhraseWords; WholeSentences streams sentence by
	// sentence. At most MaxFirstPhraseWords. Engines that stream natively
	// (espeak-ng) ignore it.
	FirstPhraseWords int
	// NeuralModels maps a neural model name to its weights path. The app has
	// no neural inference code: named models are reported unavailable with
	// the reason, never listed as voices.
	NeuralModels map[string]string
}

// Defaults of a Service.
const (
	DefaultName     = "tts"
	DefaultHTTPPort = 8000
	DefaultVoice    = "slt"
	// DefaultFirstPhraseWords is the app's own default (stream_first_words).
	DefaultFirstPhraseWords = 4
	// MaxFirstPhraseWords bounds FirstPhraseWords.
	MaxFirstPhraseWords = 64
	// WholeSentences as FirstPhraseWords streams whole sentences: no
	// first phrase is split off.
	WholeSentences = -1
)

// WithDefaults returns s with every zero field set to its default.
func (s Service) WithDefaults() Service {
	if s.Name == "" {
		s.Name = DefaultName
	}
	if s.RoutePrefix == "" {
		s.RoutePrefix = "/"
	}
	if s.HTTPPort == 0 {
		s.HTTPPort = DefaultHTTPPort
	}
	if s.DefaultVoice == "" {
		s.DefaultVoice = DefaultVoice
	}
	a := &s.Autoscaling
	if a.MinReplicas == 0 {
		a.MinReplicas = 1
	}
	if a.MaxReplicas == 0 {
		a.MaxReplicas = max(2, a.MinReplicas)
	}
	if a.TargetOngoingRequests == 0 {
		a.TargetOngoingRequests = 2
	}
	if a.UpscaleDelay == 0 {
		a.UpscaleDelay = 30 * time.Second
	}
	if a.DownscaleDelay == 0 {
		a.DownscaleDelay = 600 * time.Second
	}
	if s.MaxOngoingRequests == 0 {
		s.MaxOngoingRequests = 8
	}
	if s.CPUsPerReplica == 0 {
		s.CPUsPerReplica = 1
	}
	if s.MaxTextChars == 0 {
		s.MaxTextChars = 2000
	}
	if s.MaxConcurrency == 0 {
		s.MaxConcurrency = 4
	}
	if s.AudioTTL == 0 {
		s.AudioTTL = 10 * time.Minute
	}
	if s.FirstPhraseWords == 0 {
		s.FirstPhraseWords = DefaultFirstPhraseWords
	}
	return s
}

var (
	appNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	voiceRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)
)

// Validate checks s (after WithDefaults); errors name the field.
func (s Service) Validate() error {
	s = s.WithDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("tts.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if !appNameRE.MatchString(s.Name) {
		bad("name", "%q: want letters, digits, '_', '.', '-' (at most 64)", s.Name)
	}
	// Ray's route_prefix rules (serve/schema.py).
	switch rp := s.RoutePrefix; {
	case !strings.HasPrefix(rp, "/"):
		bad("route_prefix", "%q must start with \"/\"", rp)
	case len(rp) > 1 && strings.HasSuffix(rp, "/"):
		bad("route_prefix", "%q must not end with \"/\" unless it is \"/\"", rp)
	case strings.ContainsAny(rp, "{}"):
		bad("route_prefix", "%q must not contain wildcards", rp)
	}
	if s.HTTPPort < 1 || s.HTTPPort > 65535 {
		bad("http_port", "%d out of range 1-65535", s.HTTPPort)
	}
	for i, v := range s.Voices {
		if !voiceRE.MatchString(v) {
			bad(fmt.Sprintf("voices[%d]", i), "%q is not a voice id", v)
		}
	}
	if !voiceRE.MatchString(s.DefaultVoice) {
		bad("default_voice", "%q is not a voice id", s.DefaultVoice)
	} else if len(s.Voices) > 0 && !slices.Contains(s.Voices, s.DefaultVoice) {
		bad("default_voice", "%q is not one of voices %v", s.DefaultVoice, s.Voices)
	}
	a := s.Autoscaling
	if a.MinReplicas < 0 {
		bad("autoscaling.min_replicas", "%d must not be negative", a.MinReplicas)
	}
	if a.MaxReplicas < max(a.MinReplicas, 1) {
		bad("autoscaling.max_replicas", "%d must be at least min_replicas (%d) and 1", a.MaxReplicas, a.MinReplicas)
	}
	if a.InitialReplicas != 0 && (a.InitialReplicas < a.MinReplicas || a.InitialReplicas > a.MaxReplicas) {
		bad("autoscaling.initial_replicas", "%d must be within min_replicas..max_replicas (%d..%d)", a.InitialReplicas, a.MinReplicas, a.MaxReplicas)
	}
	if a.TargetOngoingRequests <= 0 || math.IsNaN(a.TargetOngoingRequests) {
		bad("autoscaling.target_ongoing_requests", "%v must be positive", a.TargetOngoingRequests)
	}
	if a.UpscaleDelay < 0 || a.DownscaleDelay < 0 {
		bad("autoscaling", "delays must not be negative")
	}
	if s.MaxOngoingRequests < 1 {
		bad("max_ongoing_requests", "%d must be at least 1", s.MaxOngoingRequests)
	}
	if s.CPUsPerReplica < 0 || s.GPUsPerReplica < 0 {
		bad("cpus_per_replica", "CPUs and GPUs per replica must not be negative")
	}
	if s.MaxTextChars < 1 || s.MaxConcurrency < 1 || s.AudioTTL < time.Second {
		bad("limits", "max_text_chars and max_concurrency must be at least 1, audio_ttl at least 1s")
	}
	if w := s.FirstPhraseWords; w != WholeSentences && (w < 1 || w > MaxFirstPhraseWords) {
		bad("first_phrase_words", "%d: want 1-%d words, or WholeSentences (%d)", w, MaxFirstPhraseWords, WholeSentences)
	}
	for name, p := range s.NeuralModels {
		if p == "" {
			bad("neural_models."+name, "empty weights path")
		}
	}
	return errors.Join(errs...)
}

// AutoscalingConfig is a Serve deployment's autoscaling_config.
type AutoscalingConfig struct {
	// MinReplicas is the fewest replicas Serve keeps.
	MinReplicas int `json:"min_replicas"`
	// MaxReplicas is the most replicas Serve starts.
	MaxReplicas int `json:"max_replicas"`
	// InitialReplicas is the replica count at deploy time (absent:
	// MinReplicas).
	InitialReplicas *int `json:"initial_replicas,omitempty"`
	// TargetOngoingRequests is the requests in flight per replica that Serve
	// scales towards.
	TargetOngoingRequests float64 `json:"target_ongoing_requests"`
	// UpscaleDelayS is how long, in seconds, the load must call for more
	// replicas before Serve adds them.
	UpscaleDelayS float64 `json:"upscale_delay_s"`
	// DownscaleDelayS is how long, in seconds, the load must call for fewer
	// replicas before Serve removes them.
	DownscaleDelayS float64 `json:"downscale_delay_s"`
}

// RayActorOptions are a deployment's ray_actor_options.
type RayActorOptions struct {
	// NumCPUs is the CPUs Ray reserves for each replica.
	NumCPUs float64 `json:"num_cpus"`
	// NumGPUs is the GPUs Ray reserves for each replica (absent: none).
	NumGPUs float64 `json:"num_gpus,omitempty"`
}

// DeploymentConfig is one entry of an application's deployments. It has no
// num_replicas field on purpose: the Service scales with autoscaling_config.
type DeploymentConfig struct {
	// Name is the deployment's name, DeploymentName.
	Name string `json:"name"`
	// MaxOngoingRequests is Serve's cap of requests in flight per replica.
	MaxOngoingRequests int `json:"max_ongoing_requests"`
	// AutoscalingConfig says how Serve scales the replicas.
	AutoscalingConfig AutoscalingConfig `json:"autoscaling_config"`
	// RayActorOptions are each replica's Ray resources.
	RayActorOptions RayActorOptions `json:"ray_actor_options"`
}

// AppConfig is one application of a Serve config.
type AppConfig struct {
	// Name is the application's name in Serve.
	Name string `json:"name"`
	// RoutePrefix is the URL path prefix Serve routes to the application.
	RoutePrefix string `json:"route_prefix"`
	// ImportPath is the Python import path of the application, ImportPath.
	ImportPath string `json:"import_path"`
	// Args are the app's settings under its own names (default_voice,
	// max_text_chars, stream_first_words, ...).
	Args map[string]any `json:"args"`
	// Deployments configure the application's one deployment.
	Deployments []DeploymentConfig `json:"deployments"`
}

// HTTPOptions are a Serve config's http_options.
type HTTPOptions struct {
	// Host is the address Serve's HTTP proxies listen on.
	Host string `json:"host"`
	// Port is the TCP port they listen on.
	Port int `json:"port"`
}

// ServeConfig is the body of PUT /api/serve/applications/. Applications of
// others are kept as the JSON Serve reported for them.
type ServeConfig struct {
	// ProxyLocation is where Serve runs HTTP proxies: "EveryNode" (Remove
	// keeps what Serve reported).
	ProxyLocation string `json:"proxy_location"`
	// HTTPOptions are the proxies' address and port.
	HTTPOptions HTTPOptions `json:"http_options"`
	// Applications are the others' configs as Serve reported them, then this
	// Service's (left out by Remove).
	Applications []json.RawMessage `json:"applications"`
}

// App returns the Serve application of s (after WithDefaults).
func (s Service) App() AppConfig {
	s = s.WithDefaults()
	a := s.Autoscaling
	ac := AutoscalingConfig{
		MinReplicas: a.MinReplicas, MaxReplicas: a.MaxReplicas,
		TargetOngoingRequests: a.TargetOngoingRequests,
		UpscaleDelayS:         a.UpscaleDelay.Seconds(), DownscaleDelayS: a.DownscaleDelay.Seconds(),
	}
	if a.InitialReplicas > 0 {
		n := a.InitialReplicas
		ac.InitialReplicas = &n
	}
	args := map[string]any{
		"default_voice":   s.DefaultVoice,
		"max_text_chars":  s.MaxTextChars,
		"max_concurrency": s.MaxConcurrency,
		"audio_ttl_s":     int(s.AudioTTL / time.Second),
		// The app's 0 is whole sentences.
		"stream_first_words": max(s.FirstPhraseWords, 0),
	}
	if len(s.Voices) > 0 {
		args["voices"] = slices.Clone(s.Voices)
	}
	if len(s.NeuralModels) > 0 {
		args["neural_models"] = s.NeuralModels
	}
	return AppConfig{
		Name: s.Name, RoutePrefix: s.RoutePrefix, ImportPath: ImportPath, Args: args,
		Deployments: []DeploymentConfig{{
			Name: DeploymentName, MaxOngoingRequests: s.MaxOngoingRequests, AutoscalingConfig: ac,
			RayActorOptions: RayActorOptions{NumCPUs: s.CPUsPerReplica, NumGPUs: s.GPUsPerReplica},
		}},
	}
}

// Config returns the whole Serve config that deploys s next to the given
// applications of others (their configs as Serve reported them; an entry
// with s's name is replaced). The PUT is declarative: an application left
// out would be deleted, so callers pass every other application.
func (s Service) Config(others []json.RawMessage) (ServeConfig, error) {
	if err := s.Validate(); err != nil {
		return ServeConfig{}, err
	}
	s = s.WithDefaults()
	mine, err := json.Marshal(s.App())
	if err != nil {
		return ServeConfig{}, err
	}
	cfg := ServeConfig{ProxyLocation: "EveryNode", HTTPOptions: HTTPOptions{Host: "0.0.0.0", Port: s.HTTPPort}}
	for i, raw := range others {
		var head struct {
			Name        string `json:"name"`
			RoutePrefix string `json:"route_prefix"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			return ServeConfig{}, fmt.Errorf("tts: other application %d: %w", i, err)
		}
		if head.Name == s.Name {
			continue
		}
		if head.RoutePrefix == s.RoutePrefix {
			return ServeConfig{}, fmt.Errorf("tts.route_prefix: %q is taken by Serve application %q", s.RoutePrefix, head.Name)
		}
		cfg.Applications = append(cfg.Applications, raw)
	}
	cfg.Applications = append(cfg.Applications, mine)
	return cfg, nil
}
