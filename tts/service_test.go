package tts

import (
	"encoding/json"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestServeConfigUsesAutoscalingOnly(t *testing.T) {
	svc := Service{Autoscaling: Autoscaling{MinReplicas: 1, MaxReplicas: 3}, CPUsPerReplica: 0.5}
	other := json.RawMessage(`{"name":"text_app","route_prefix":"/text","import_path":"text_ml:app"}`)
	stale := json.RawMessage(`{"name":"tts","route_prefix":"/","import_path":"old:app"}`)
	cfg, err := svc.Config([]json.RawMessage{other, stale})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		HTTPOptions  HTTPOptions `json:"http_options"`
		Applications []map[string]any
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Applications) != 2 || got.Applications[0]["name"] != "text_app" || got.Applications[1]["import_path"] != ImportPath {
		t.Fatalf("applications = %v, want text_app kept and tts replaced", got.Applications)
	}
	dep := got.Applications[1]["deployments"].([]any)[0].(map[string]any)
	if _, has := dep["num_replicas"]; has {
		t.Errorf("deployment %v sets num_replicas", dep)
	}
	ac := dep["autoscaling_config"].(map[string]any)
	if ac["min_replicas"] != 1.0 || ac["max_replicas"] != 3.0 || ac["target_ongoing_requests"] != 2.0 || ac["downscale_delay_s"] != 600.0 {
		t.Errorf("autoscaling_config = %v", ac)
	}
	if got.HTTPOptions.Port != 8000 {
		t.Errorf("http_options = %+v, want port 8000", got.HTTPOptions)
	}
	if _, err := svc.Config([]json.RawMessage{json.RawMessage(`{"name":"x","route_prefix":"/"}`)}); err == nil || !strings.Contains(err.Error(), "tts.route_prefix") {
		t.Errorf("route clash: err = %v", err)
	}
}

func TestServiceValidateNamesFields(t *testing.T) {
	for _, tc := range []struct {
		svc   Service
		field string
	}{
		{Service{RoutePrefix: "tts/"}, "tts.route_prefix"},
		{Service{Autoscaling: Autoscaling{MinReplicas: 3, MaxReplicas: 2}}, "tts.autoscaling.max_replicas"},
		{Service{Autoscaling: Autoscaling{MinReplicas: 1, MaxReplicas: 2, InitialReplicas: 5}}, "tts.autoscaling.initial_replicas"},
		{Service{Voices: []string{"rms"}, DefaultVoice: "slt"}, "tts.default_voice"},
		{Service{HTTPPort: 70000}, "tts.http_port"},
		{Service{Name: "two words"}, "tts.name"},
	} {
		if err := tc.svc.Validate(); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v: err = %v, want one naming %s", tc.svc, err, tc.field)
		}
	}
	if err := (Service{}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// FirstPhraseWords reaches the app as stream_first_words; its default is the
// app's own (config.py), and WholeSentences is the app's 0.
func TestFirstPhraseWordsInAppArgs(t *testing.T) {
	py, err := fs.ReadFile(AppFiles(), PythonPackage+"/config.py")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*stream_first_words: int = (\d+)`).FindSubmatch(py)
	if m == nil || string(m[1]) != strconv.Itoa(DefaultFirstPhraseWords) {
		t.Fatalf("config.py's stream_first_words default is %q, want DefaultFirstPhraseWords (%d)", m, DefaultFirstPhraseWords)
	}
	for _, tc := range []struct{ words, want int }{{0, DefaultFirstPhraseWords}, {2, 2}, {MaxFirstPhraseWords, MaxFirstPhraseWords}, {WholeSentences, 0}} {
		cfg, err := Service{FirstPhraseWords: tc.words}.Config(nil)
		if err != nil {
			t.Fatalf("FirstPhraseWords %d: %v", tc.words, err)
		}
		var app struct {
			Args map[string]any `json:"args"`
		}
		if err := json.Unmarshal(cfg.Applications[0], &app); err != nil {
			t.Fatal(err)
		}
		if got := app.Args["stream_first_words"]; got != float64(tc.want) {
			t.Errorf("FirstPhraseWords %d: args.stream_first_words = %v, want %d", tc.words, got, tc.want)
		}
	}
	for _, w := range []int{-2, MaxFirstPhraseWords + 1} {
		if err := (Service{FirstPhraseWords: w}).Validate(); err == nil || !strings.Contains(err.Error(), "tts.first_phrase_words") {
			t.Errorf("FirstPhraseWords %d: err = %v, want one naming tts.first_phrase_words", w, err)
		}
	}
}
