package tts

import (
	"encoding/json"
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
