package tts_test

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/raydeploy/sdk/tts"
)

// The Serve config of a TTS service scaling between 1 and 4 replicas: only
// autoscaling_config, never num_replicas (Ray Serve refuses both).
func ExampleService_Config() {
	svc := tts.Service{Autoscaling: tts.Autoscaling{MinReplicas: 1, MaxReplicas: 4}, Voices: []string{"slt", "rms"}}
	cfg, err := svc.Config(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	var app tts.AppConfig
	_ = json.Unmarshal(cfg.Applications[0], &app)
	fmt.Println(app.Name, app.RoutePrefix, app.ImportPath, cfg.HTTPOptions.Port)
	enc := json.NewEncoder(os.Stdout)
	_ = enc.Encode(app.Deployments[0])
	// Output:
	// tts / raydeploy_tts.serve_app:build_app 8000
	// {"name":"TTSService","max_ongoing_requests":8,"autoscaling_config":{"min_replicas":1,"max_replicas":4,"target_ongoing_requests":2,"upscale_delay_s":30,"downscale_delay_s":600},"ray_actor_options":{"num_cpus":1}}
}

// A Service with a mistake names the field.
func ExampleService_Validate() {
	err := tts.Service{Autoscaling: tts.Autoscaling{MinReplicas: 3, MaxReplicas: 2}}.Validate()
	fmt.Println(err)
	// Output:
	// tts.autoscaling.max_replicas: 2 must be at least min_replicas (3) and 1
}
