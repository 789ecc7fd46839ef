package api

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDecoders feeds the strict JSON decoders of request bodies, the tokens
// file and execution records: no panic, and what one accepts survives a
// round trip unchanged. Brief in CI (the seed corpus runs as a test);
// longer: go test -run '^$' -fuzz FuzzDecoders -fuzztime 10m ./raydeploy/api
func FuzzDecoders(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"approve":true}`, `{"force":false,"approve":true}`, `{"checkpoint":"cleanup-existing","resume":true}`,
		`{"approved":true,"plan_digest":"sha256:00","reason":"x","acknowledge_risks":true}`,
		`{"approved_by":"a","reason":"b","acknowledge_risks":true,"plan_digest":"d","reject":false}`,
		`{"version":1,"tokens":[{"name":"a","role":"viewer","sha256":"0000000000000000000000000000000000000000000000000000000000000000","created_at":"2026-01-01T00:00:00Z"}]}`,
		`{"execution_id":"0123456789abcdef0123456789abcdef","status":"RUNNING","resume":false,"requested_by":"x","started_at":"2026-01-01T00:00:00Z","checkpoints":[]}`,
		`{"a":1}`, `[]`, `null`, `{"approve":"yes"}`, `{} {}`, `{"checkpoint":"\u0000"}`,
	} {
		f.Add([]byte(s))
	}
	targets := []func() any{
		func() any { return new(CheckpointExecutionRequest) },
		func() any { return new(ExecutionRequest) },
		func() any { return new(PlanRequest) },
		func() any { return new(DecisionRequest) },
		func() any { return new(SeedApprovalRequest) },
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, mk := range targets {
			v := mk()
			if strictUnmarshal(data, v) != nil {
				continue
			}
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			w := mk()
			if err := strictUnmarshal(b, w); err != nil || !reflect.DeepEqual(v, w) {
				t.Fatalf("%T: round trip of %q: %v", v, b, err)
			}
		}
		if tf, err := decodeTokensFile(data); err == nil {
			b, _ := json.Marshal(tf)
			if _, err := decodeTokensFile(b); err != nil {
				t.Fatalf("accepted tokens file does not round-trip: %v", err)
			}
		}
		if e, err := decodeExecution(data); err == nil {
			b, _ := json.Marshal(e)
			if _, err := decodeExecution(b); err != nil {
				t.Fatalf("accepted execution does not round-trip: %v", err)
			}
		}
	})
}
