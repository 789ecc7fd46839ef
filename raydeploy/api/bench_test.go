package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raydeploy/sdk/raydeploy/api"
)

// The benchmark command (figures printed, each against a baseline of the same run):
//
//	go test -run '^$' -bench 'BenchmarkAPI' -benchtime 1x ./raydeploy/api
//
// BenchmarkAPIStatus200Clients: 200 concurrent clients on GET
// /api/v1/cluster/status (p50, p99, requests/s), against /healthz (no work).
// BenchmarkAPIEventFanout100: 100 event-stream clients during deploys,
// delivery lag p99 (event time to client receipt), against one client.

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[int(float64(len(d)-1)*p)]
}

type loadResult struct {
	p50, p99 time.Duration
	rps      float64
}

func load(b *testing.B, url, token string, clients, perClient int) loadResult {
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr}
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perClient {
				req, _ := http.NewRequest("GET", url, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				t0 := time.Now()
				resp, err := cl.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("%s: %d", url, resp.StatusCode)
					return
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	all := slices.Concat(lat...)
	return loadResult{p50: percentile(all, .5), p99: percentile(all, .99), rps: float64(len(all)) / el.Seconds()}
}

func BenchmarkAPIStatus200Clients(b *testing.B) {
	e := newEnv(b, envOptions{gate: nil})
	var x api.Execution
	e.call("operator", "POST", "/api/v1/executions", map[string]any{"start_from": "ray-deployment"}, &x)
	waitFor(b, "a finished run", func() bool { return e.execution(x.ID).Status == api.ExecCompleted })
	for b.Loop() {
		base := load(b, e.ts.URL+"/healthz", e.tokens["viewer"], 200, 25)
		st := load(b, e.ts.URL+"/api/v1/cluster/status", e.tokens["viewer"], 200, 25)
		b.ReportMetric(float64(st.p50.Microseconds()), "status-p50-µs")
		b.ReportMetric(float64(st.p99.Microseconds()), "status-p99-µs")
		b.ReportMetric(st.rps, "status-req/s")
		b.ReportMetric(base.rps/st.rps, "healthz/status-throughput-ratio")
		fmt.Printf("GET /api/v1/cluster/status, 200 clients: p50 %v, p99 %v, %.0f req/s; baseline /healthz: p50 %v, p99 %v, %.0f req/s; throughput ratio healthz/status %.2f\n",
			st.p50, st.p99, st.rps, base.p50, base.p99, base.rps, base.rps/st.rps)
	}
}

// fanout connects n stream clients, runs deploys, and returns every delivery lag.
func fanout(b *testing.B, e *env, n, runs int) []time.Duration {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var lags []time.Duration
	var ready, done sync.WaitGroup
	finished := make(chan struct{}, n)
	for range n {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			req, _ := http.NewRequestWithContext(ctx, "GET", e.ts.URL+"/api/v1/events", nil)
			req.Header.Set("Authorization", "Bearer "+e.tokens["viewer"])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				ready.Done()
				b.Error(err)
				return
			}
			defer resp.Body.Close()
			ready.Done()
			sc := bufio.NewScanner(resp.Body)
			seen := 0
			for sc.Scan() {
				data, ok := strings.CutPrefix(sc.Text(), "data: ")
				if !ok {
					continue
				}
				var ev api.Event
				if json.Unmarshal([]byte(data), &ev) != nil || ev.At.IsZero() {
					continue
				}
				lag := time.Since(ev.At)
				mu.Lock()
				lags = append(lags, lag)
				mu.Unlock()
				if ev.Type == api.EventRunFinished {
					if seen++; seen == runs {
						finished <- struct{}{}
						return
					}
				}
			}
		}()
	}
	ready.Wait()
	for range runs {
		var x api.Execution
		if c := e.call("operator", "POST", "/api/v1/executions", map[string]any{"start_from": "ray-deployment"}, &x); c != 202 {
			b.Fatalf("start: %d", c)
		}
		waitFor(b, "the run", func() bool { return e.execution(x.ID).Status == api.ExecCompleted })
	}
	for range n {
		<-finished
	}
	cancel()
	done.Wait()
	return lags
}

func BenchmarkAPIEventFanout100(b *testing.B) {
	e := newEnv(b, envOptions{})
	for b.Loop() {
		one := fanout(b, e, 1, 10)
		many := fanout(b, e, 100, 10)
		p1, p100 := percentile(one, .99), percentile(many, .99)
		b.ReportMetric(float64(p100.Microseconds()), "lag-p99-µs")
		b.ReportMetric(float64(len(many)), "deliveries")
		b.ReportMetric(float64(p100)/float64(max(p1, time.Microsecond)), "lag-p99-100/1-ratio")
		fmt.Printf("event stream, 100 clients during 10 deploys: %d deliveries, lag p50 %v, p99 %v; baseline 1 client: %d deliveries, p50 %v, p99 %v; p99 ratio %.1f\n",
			len(many), percentile(many, .5), p100, len(one), percentile(one, .5), p1, float64(p100)/float64(max(p1, time.Microsecond)))
	}
}
