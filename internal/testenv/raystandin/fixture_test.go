package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raydeploy/sdk/internal/raydash"
)

// fixtureDir holds the dashboard client's test bodies: recorded ones, or
// shaped after Ray's source and tests (see its README). The stand-in must
// answer in the same shapes the client is tested with.
var fixtureDir = filepath.Join("..", "..", "raydash", "testdata")

// freeKeys name objects whose keys are data (resource names, label names,
// node ids, node types): only their values' kinds are compared.
var freeKeys = map[string]bool{
	"resources_total": true, "resourcesTotal": true, "labels": true, "usage": true,
	"metadata": true, "runtime_env": true, "nodeLogicalResources": true, "activeNodes": true,
	"idleNodes": true, "pendingLaunches": true, "pendingResources": true, "nodeAvailabilities": true,
	"storeStats": true, "env_vars": true,
}

// shapeDiff lists where got differs in shape from want: object keys (except
// under freeKeys), nesting and JSON kinds. A null on either side matches
// anything (Optional fields); the first element of a fixture's array is
// the pattern of every element of got's.
func shapeDiff(path string, want, got any) []string {
	if want == nil || got == nil {
		return nil
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %T, want an object", path, got)}
		}
		var out []string
		key := path[strings.LastIndex(path, ".")+1:]
		if freeKeys[key] {
			var pattern any
			for _, v := range w {
				pattern = v
				break
			}
			for k, v := range g {
				out = append(out, shapeDiff(path+"."+k, pattern, v)...)
			}
			return out
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				out = append(out, path+"."+k+": missing")
				continue
			}
			out = append(out, shapeDiff(path+"."+k, wv, gv)...)
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				out = append(out, path+"."+k+": not in Ray's shape")
			}
		}
		sort.Strings(out)
		return out
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %T, want an array", path, got)}
		}
		if len(w) == 0 {
			return nil
		}
		var out []string
		for i, gv := range g {
			out = append(out, shapeDiff(fmt.Sprintf("%s[%d]", path, i), w[0], gv)...)
		}
		return out
	}
	if fmt.Sprintf("%T", want) != fmt.Sprintf("%T", got) {
		return []string{fmt.Sprintf("%s: %T, want %T", path, got, want)}
	}
	return nil
}

func readFixture(t *testing.T, name string) any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

// TestFixtureShapes starts a head and a worker and compares the stand-in's
// answers with the dashboard client's fixtures.
func TestFixtureShapes(t *testing.T) {
	requirePython(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	headN, w := newNodeAddr(t, "127.0.0.1"), newNodeAddr(t, "127.0.0.2")
	gcsPort, dashPort := freePort(t, headN.ip), freePort(t, headN.ip)
	headN.proc = startRay(t, "head", nil, headArgs(t, headN, gcsPort, dashPort, 1)...)
	w.proc = startRay(t, "worker", nil, "start", "--address="+net.JoinHostPort(headN.ip, strconv.Itoa(gcsPort)),
		"--node-ip-address="+w.ip, "--num-cpus=2", "--num-gpus=1", "--metrics-export-port="+strconv.Itoa(w.metricsPort),
		"--dashboard-agent-listen-port="+strconv.Itoa(w.agentPort), "--temp-dir="+w.tempDir, "--block")
	base := fmt.Sprintf("http://%s:%d", headN.ip, dashPort)
	c, err := raydash.New(raydash.Config{BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "2 nodes ALIVE", func() error {
		nodes, err := c.Nodes(ctx)
		if err == nil && len(nodes) != 2 {
			err = fmt.Errorf("%d nodes", len(nodes))
		}
		return err
	})
	// A failed job, as in job-details.json.
	sub, err := c.SubmitJob(ctx, raydash.JobSubmitRequest{Entrypoint: "python -c 'import sys; sys.exit(1)'", Metadata: map[string]string{"owner": "raydeploy"}})
	if err != nil {
		t.Fatal(err)
	}
	if info, err := c.WaitJob(ctx, sub.SubmissionID, 100*time.Millisecond); err != nil || info.Status != raydash.JobFailed {
		t.Fatalf("job = %+v, %v; want FAILED", info, err)
	}

	for _, tc := range []struct{ fixture, path string }{
		{"api-v0-nodes.json", "/api/v0/nodes?limit=10000&detail=1"},
		{"nodes-summary.json", "/nodes?view=summary"},
		{"cluster-status.json", "/api/cluster_status"},
		{"job-details.json", "/api/jobs/" + sub.SubmissionID},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			status, body, err := httpGet(ctx, base+tc.path)
			if err != nil || status != 200 {
				t.Fatalf("GET %s = %d, %v", tc.path, status, err)
			}
			var got any
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("GET %s: %v\n%s", tc.path, err, body)
			}
			if diff := shapeDiff("$", readFixture(t, tc.fixture), got); len(diff) > 0 {
				t.Errorf("GET %s differs from %s:\n  %s\nbody: %s", tc.path, tc.fixture, strings.Join(diff, "\n  "), body)
			}
		})
	}
}

// TestShapeDiff checks the comparison itself: it must see a missing key,
// an extra key, a kind change and a nesting change.
func TestShapeDiff(t *testing.T) {
	want := map[string]any{"a": 1.0, "b": map[string]any{"c": "x"}, "l": []any{map[string]any{"d": true}}, "usage": map[string]any{"CPU": []any{1.0, 2.0}}}
	got := map[string]any{"a": "1", "b": map[string]any{"c": "y", "e": 1.0}, "l": []any{map[string]any{}}, "usage": map[string]any{"GPU": []any{"x"}}}
	diff := strings.Join(shapeDiff("$", want, got), "\n")
	for _, s := range []string{"$.a: string, want float64", "$.b.e: not in Ray's shape", "$.l[0].d: missing", "$.usage.GPU[0]: string, want float64"} {
		if !strings.Contains(diff, s) {
			t.Errorf("diff lacks %q:\n%s", s, diff)
		}
	}
	if d := shapeDiff("$", want, want); len(d) != 0 {
		t.Errorf("a body differs from itself: %v", d)
	}
}
