package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Ray's job status messages (python/ray/dashboard/modules/job/job_manager.py).
const (
	msgPending   = "Job has not started yet. It may be waiting for resources (CPUs, GPUs, memory, custom resources) to become available. It may be waiting for the runtime environment to be set up."
	msgRunning   = "Job is currently running."
	msgSucceeded = "Job finished successfully."
	msgStopped   = "Job was intentionally stopped."
)

// job is one submitted job.
type job struct {
	SubmissionID string            `json:"submission_id"`
	JobID        *string           `json:"job_id"`
	Entrypoint   string            `json:"entrypoint"`
	Status       string            `json:"status"`
	Message      string            `json:"message"`
	ErrorType    *string           `json:"error_type"`
	StartTime    int64             `json:"start_time"`
	EndTime      *int64            `json:"end_time"`
	Metadata     map[string]string `json:"metadata"`
	RuntimeEnv   map[string]any    `json:"runtime_env"`
	ExitCode     *int              `json:"driver_exit_code"`
	PID          int               `json:"-"`
	logPath      string
	stopping     bool
	done         chan struct{}
}

// jobManager runs jobs as `sh -c <entrypoint>` on the head.
type jobManager struct {
	h    *head
	mu   sync.Mutex
	jobs map[string]*job
	next int
}

func newJobManager(h *head) *jobManager {
	return &jobManager{h: h, jobs: map[string]*job{}, next: 1}
}

func (m *jobManager) routes(mux *http.ServeMux) {
	for _, p := range []string{"/api/jobs/{$}", "/api/jobs"} {
		mux.HandleFunc("POST "+p, m.submit)
		mux.HandleFunc("GET "+p, m.list)
	}
	mux.HandleFunc("GET /api/jobs/{id}", m.get)
	mux.HandleFunc("DELETE /api/jobs/{id}", m.delete)
	mux.HandleFunc("GET /api/jobs/{id}/logs", m.logs)
	mux.HandleFunc("POST /api/jobs/{id}/stop", m.stop)
}

// details renders a job as Ray's JobDetails.
func (m *jobManager) details(j *job) map[string]any {
	d := map[string]any{
		"type": "SUBMISSION", "entrypoint": j.Entrypoint, "job_id": j.JobID,
		"submission_id": j.SubmissionID, "status": j.Status, "message": j.Message,
		"error_type": j.ErrorType, "start_time": j.StartTime, "end_time": j.EndTime,
		"metadata": j.Metadata, "runtime_env": j.RuntimeEnv, "driver_exit_code": j.ExitCode,
		"driver_agent_http_address": "http://" + m.h.rec.NodeIP + ":" + strconv.Itoa(m.h.rec.AgentPort),
		"driver_node_id":            m.h.rec.NodeID, "driver_info": nil,
	}
	if j.JobID != nil {
		d["driver_info"] = map[string]any{"id": *j.JobID, "node_ip_address": m.h.rec.NodeIP, "pid": strconv.Itoa(j.PID)}
	}
	return d
}

func (m *jobManager) find(w http.ResponseWriter, r *http.Request) *job {
	id := r.PathValue("id")
	m.mu.Lock()
	j := m.jobs[id]
	m.mu.Unlock()
	if j == nil {
		http.Error(w, fmt.Sprintf("Job %s does not exist", id), http.StatusNotFound)
	}
	return j
}

func (m *jobManager) submit(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Entrypoint   string            `json:"entrypoint"`
		SubmissionID string            `json:"submission_id"`
		JobID        string            `json:"job_id"`
		RuntimeEnv   map[string]any    `json:"runtime_env"`
		Metadata     map[string]string `json:"metadata"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, "Failed to parse request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if req.Entrypoint == "" {
		http.Error(w, "TypeError: entrypoint is required", http.StatusBadRequest)
		return
	}
	env := []string{}
	if ev, ok := req.RuntimeEnv["env_vars"]; ok {
		vars, ok := ev.(map[string]any)
		if !ok {
			http.Error(w, "TypeError: runtime_env['env_vars'] must be of type Dict[str, str]", http.StatusBadRequest)
			return
		}
		for k, v := range vars {
			s, ok := v.(string)
			if !ok {
				http.Error(w, fmt.Sprintf("TypeError: runtime_env['env_vars'][%q] must be a string", k), http.StatusBadRequest)
				return
			}
			env = append(env, k+"="+s)
		}
	}
	id := req.SubmissionID
	if id == "" {
		id = req.JobID
	}
	if id == "" {
		id = "raysubmit_" + randomSuffix(16)
	}
	m.mu.Lock()
	if _, dup := m.jobs[id]; dup {
		m.mu.Unlock()
		http.Error(w, fmt.Sprintf("ValueError: Job with submission_id %s already exists. Please use a different submission_id.", id), http.StatusBadRequest)
		return
	}
	j := &job{
		SubmissionID: id, Entrypoint: req.Entrypoint, Status: "PENDING", Message: msgPending,
		StartTime: time.Now().UnixMilli(), Metadata: req.Metadata, RuntimeEnv: req.RuntimeEnv,
		logPath: filepath.Join(m.h.sessionDir, "logs", "job-driver-"+id+".log"), done: make(chan struct{}),
	}
	if j.Metadata == nil {
		j.Metadata = map[string]string{}
	}
	m.jobs[id] = j
	jobID := fmt.Sprintf("%02x000000", m.next%256)
	m.next++
	m.mu.Unlock()
	go m.runJob(j, jobID, env)
	writeJSON(w, http.StatusOK, map[string]string{"job_id": id, "submission_id": id})
}

// runJob starts the entrypoint, waits for it and records the outcome.
func (m *jobManager) runJob(j *job, jobID string, env []string) {
	finish := func(status, msg string, errType *string, code *int) {
		m.mu.Lock()
		end := time.Now().UnixMilli()
		j.Status, j.Message, j.ErrorType, j.ExitCode, j.EndTime = status, msg, errType, code, &end
		m.mu.Unlock()
		close(j.done)
	}
	logf, err := os.Create(j.logPath)
	if err != nil {
		et := "JOB_SUPERVISOR_ACTOR_START_FAILURE"
		finish("FAILED", "Failed to create the log file: "+err.Error(), &et, nil)
		return
	}
	defer logf.Close()
	cmd := exec.Command("sh", "-c", j.Entrypoint)
	cmd.Dir = m.h.sessionDir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(),
		"RAY_ADDRESS="+m.h.gcsAddr,
		"RAY_JOB_SUBMISSION_ID="+j.SubmissionID,
		"RAY_STANDIN_NODE_ID="+m.h.rec.NodeID,
		"RAY_STANDIN_NODE_IP="+m.h.rec.NodeIP,
	)
	cmd.Env = append(cmd.Env, env...)
	m.mu.Lock()
	if j.stopping {
		m.mu.Unlock()
		finish("STOPPED", msgStopped, nil, nil)
		return
	}
	err = cmd.Start()
	if err == nil {
		j.Status, j.Message, j.JobID, j.PID = "RUNNING", msgRunning, &jobID, cmd.Process.Pid
	}
	m.mu.Unlock()
	if err != nil {
		et := "JOB_ENTRYPOINT_COMMAND_START_ERROR"
		finish("FAILED", "Failed to start the entrypoint: "+err.Error(), &et, nil)
		return
	}
	waitErr := cmd.Wait()
	code := cmd.ProcessState.ExitCode()
	m.mu.Lock()
	stopping := j.stopping
	m.mu.Unlock()
	switch {
	case stopping:
		finish("STOPPED", msgStopped, nil, &code)
	case waitErr == nil:
		finish("SUCCEEDED", msgSucceeded, nil, &code)
	default:
		logs, _ := os.ReadFile(j.logPath)
		et := "JOB_ENTRYPOINT_COMMAND_ERROR"
		finish("FAILED", fmt.Sprintf("Job entrypoint command failed with exit code %d, last available logs (truncated to 20,000 chars):\n%s", code, tail(string(logs), 20000)), &et, &code)
	}
}

func (m *jobManager) list(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	out := []map[string]any{}
	for _, j := range m.jobs {
		out = append(out, m.details(j))
	}
	m.mu.Unlock()
	sort.Slice(out, func(a, b int) bool { return out[a]["start_time"].(int64) < out[b]["start_time"].(int64) })
	writeJSON(w, http.StatusOK, out)
}

func (m *jobManager) get(w http.ResponseWriter, r *http.Request) {
	if j := m.find(w, r); j != nil {
		m.mu.Lock()
		d := m.details(j)
		m.mu.Unlock()
		writeJSON(w, http.StatusOK, d)
	}
}

func (m *jobManager) logs(w http.ResponseWriter, r *http.Request) {
	j := m.find(w, r)
	if j == nil {
		return
	}
	b, err := os.ReadFile(j.logPath)
	if err != nil && !os.IsNotExist(err) {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"logs": string(b)})
}

// stop sends SIGTERM to the job's process group, SIGKILL after 3 s (Ray's
// RAY_JOB_STOP_WAIT_TIME_S default).
func (m *jobManager) stop(w http.ResponseWriter, r *http.Request) {
	j := m.find(w, r)
	if j == nil {
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"stopped": m.stopJob(j)})
}

func (m *jobManager) stopJob(j *job) bool {
	m.mu.Lock()
	terminal := j.EndTime != nil
	if terminal || j.stopping {
		m.mu.Unlock()
		return !terminal
	}
	j.stopping = true
	pid := j.PID
	m.mu.Unlock()
	if pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		go func() {
			select {
			case <-j.done:
			case <-time.After(3 * time.Second):
				_ = syscall.Kill(-pid, syscall.SIGKILL)
			}
		}()
	}
	return true
}

// stopAll stops every running job and waits for them (head shutdown).
func (m *jobManager) stopAll() {
	m.mu.Lock()
	var all []*job
	for _, j := range m.jobs {
		all = append(all, j)
	}
	m.mu.Unlock()
	for _, j := range all {
		m.stopJob(j)
	}
	for _, j := range all {
		select {
		case <-j.done:
		case <-time.After(5 * time.Second):
		}
	}
}

func (m *jobManager) delete(w http.ResponseWriter, r *http.Request) {
	j := m.find(w, r)
	if j == nil {
		return
	}
	m.mu.Lock()
	if j.EndTime == nil {
		status := j.Status
		m.mu.Unlock()
		http.Error(w, fmt.Sprintf("Attempted to delete job with submission_id %s, but it is in a non-terminal state %s. Job can only be deleted if it is in a terminal state.", j.SubmissionID, status), http.StatusInternalServerError)
		return
	}
	delete(m.jobs, j.SubmissionID)
	m.mu.Unlock()
	_ = os.Remove(j.logPath)
	writeJSON(w, http.StatusOK, map[string]bool{"deleted": true})
}
