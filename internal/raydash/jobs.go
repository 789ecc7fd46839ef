package raydash

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// JobStatus is the status of a submitted job.
type JobStatus string

// Job statuses (Ray's JobStatus enum).
const (
	JobPending   JobStatus = "PENDING"
	JobRunning   JobStatus = "RUNNING"
	JobStopped   JobStatus = "STOPPED"
	JobSucceeded JobStatus = "SUCCEEDED"
	JobFailed    JobStatus = "FAILED"
)

// Terminal reports whether the job has finished (STOPPED, SUCCEEDED or FAILED).
func (s JobStatus) Terminal() bool {
	return s == JobStopped || s == JobSucceeded || s == JobFailed
}

// JobSubmitRequest is the body of POST /api/jobs/.
type JobSubmitRequest struct {
	// Entrypoint is the shell command the head runs, e.g. "python script.py".
	Entrypoint string `json:"entrypoint"`
	// SubmissionID is optional; Ray generates "raysubmit_..." when empty.
	SubmissionID string `json:"submission_id,omitempty"`
	// RuntimeEnv is Ray's runtime_env (env_vars, working_dir as a remote URI, pip...).
	RuntimeEnv map[string]any `json:"runtime_env,omitempty"`
	// Metadata is arbitrary string metadata kept with the job.
	Metadata map[string]string `json:"metadata,omitempty"`
	// EntrypointNumCPUs reserves CPUs for the entrypoint itself.
	EntrypointNumCPUs float64 `json:"entrypoint_num_cpus,omitempty"`
	// EntrypointNumGPUs reserves GPUs for the entrypoint itself.
	EntrypointNumGPUs float64 `json:"entrypoint_num_gpus,omitempty"`
	// EntrypointMemory reserves memory (bytes) for the entrypoint itself.
	EntrypointMemory int64 `json:"entrypoint_memory,omitempty"`
	// EntrypointResources reserves custom resources for the entrypoint.
	EntrypointResources map[string]float64 `json:"entrypoint_resources,omitempty"`
}

// JobSubmitResponse is the answer of POST /api/jobs/.
type JobSubmitResponse struct {
	// JobID is Ray's (deprecated) job id, when the server sends one.
	JobID string `json:"job_id,omitempty"`
	// SubmissionID identifies the job in every other Jobs API call.
	SubmissionID string `json:"submission_id"`
}

// DriverInfo describes the driver process of a job.
type DriverInfo struct {
	// ID is the driver's id.
	ID string `json:"id"`
	// NodeIPAddress is where the driver runs.
	NodeIPAddress string `json:"node_ip_address"`
	// PID is the driver's process id (a string in Ray's schema).
	PID string `json:"pid"`
}

// JobInfo is Ray's JobDetails: the status and details of one job.
type JobInfo struct {
	// Type is "SUBMISSION" or "DRIVER".
	Type string `json:"type"`
	// Entrypoint is the job's command.
	Entrypoint string `json:"entrypoint"`
	// JobID is Ray's job id (set once the driver started).
	JobID string `json:"job_id,omitempty"`
	// SubmissionID is the Jobs API id.
	SubmissionID string `json:"submission_id,omitempty"`
	// DriverInfo describes the driver, when there is one.
	DriverInfo *DriverInfo `json:"driver_info,omitempty"`
	// Status is the job status.
	Status JobStatus `json:"status"`
	// Message explains the status.
	Message string `json:"message,omitempty"`
	// ErrorType classifies a failure (e.g. "JOB_ENTRYPOINT_COMMAND_ERROR").
	ErrorType string `json:"error_type,omitempty"`
	// StartTime is when the job started, Unix ms (0 if not yet).
	StartTime int64 `json:"start_time,omitempty"`
	// EndTime is when the job reached a terminal state, Unix ms (0 if not yet).
	EndTime int64 `json:"end_time,omitempty"`
	// Metadata is the submitted metadata.
	Metadata map[string]string `json:"metadata,omitempty"`
	// RuntimeEnv is the job's runtime environment.
	RuntimeEnv map[string]any `json:"runtime_env,omitempty"`
	// DriverAgentHTTPAddress is the agent address of the driver's node.
	DriverAgentHTTPAddress string `json:"driver_agent_http_address,omitempty"`
	// DriverNodeID is the node id of the driver's node.
	DriverNodeID string `json:"driver_node_id,omitempty"`
	// DriverExitCode is the entrypoint's exit code once it exited.
	DriverExitCode *int `json:"driver_exit_code,omitempty"`
}

// jobPath returns /api/jobs/<escaped id><suffix>.
func jobPath(id, suffix string) (string, error) {
	if id == "" {
		return "", errors.New("dashboard: empty job id")
	}
	return "/api/jobs/" + url.PathEscape(id) + suffix, nil
}

// SubmitJob submits a job (POST /api/jobs/). A 400 answer (bad request, a
// duplicate submission id) comes back as an *HTTPError holding Ray's text.
func (c *Client) SubmitJob(ctx context.Context, req JobSubmitRequest) (JobSubmitResponse, error) {
	var out JobSubmitResponse
	if req.Entrypoint == "" {
		return out, errors.New("dashboard: submit job: empty entrypoint")
	}
	err := c.doJSON(ctx, http.MethodPost, "/api/jobs/", nil, req, &out)
	return out, err
}

// Jobs lists every job the cluster knows (GET /api/jobs/).
func (c *Client) Jobs(ctx context.Context) ([]JobInfo, error) {
	var out []JobInfo
	err := c.doJSON(ctx, http.MethodGet, "/api/jobs/", nil, nil, &out)
	return out, err
}

// JobInfo returns the details of one job (GET /api/jobs/{id}); an unknown id
// gives an error matching ErrNotFound.
func (c *Client) JobInfo(ctx context.Context, id string) (JobInfo, error) {
	var out JobInfo
	p, err := jobPath(id, "")
	if err != nil {
		return out, err
	}
	err = c.doJSON(ctx, http.MethodGet, p, nil, nil, &out)
	return out, err
}

// JobLogs returns everything the job's entrypoint has written so far
// (GET /api/jobs/{id}/logs).
func (c *Client) JobLogs(ctx context.Context, id string) (string, error) {
	p, err := jobPath(id, "/logs")
	if err != nil {
		return "", err
	}
	var out struct {
		Logs string `json:"logs"`
	}
	err = c.doJSON(ctx, http.MethodGet, p, nil, nil, &out)
	return out.Logs, err
}

// StopJob asks Ray to stop a job (POST /api/jobs/{id}/stop). It reports
// whether the job was running and is now being stopped (false: it had already
// finished).
func (c *Client) StopJob(ctx context.Context, id string) (bool, error) {
	p, err := jobPath(id, "/stop")
	if err != nil {
		return false, err
	}
	var out struct {
		Stopped bool `json:"stopped"`
	}
	err = c.doJSON(ctx, http.MethodPost, p, nil, nil, &out)
	return out.Stopped, err
}

// DeleteJob deletes a job in a terminal state with its logs (DELETE /api/jobs/{id}).
func (c *Client) DeleteJob(ctx context.Context, id string) error {
	p, err := jobPath(id, "")
	if err != nil {
		return err
	}
	var out struct {
		Deleted bool `json:"deleted"`
	}
	if err := c.doJSON(ctx, http.MethodDelete, p, nil, nil, &out); err != nil {
		return err
	}
	if !out.Deleted {
		return fmt.Errorf("dashboard: DELETE %s: job not deleted", p)
	}
	return nil
}

// WaitJob polls JobInfo every pollInterval (1 s when <= 0) until the job
// reaches a terminal status and returns that last JobInfo. The error is
// non-nil only when polling fails or ctx ends (then the JobInfo is the last
// one seen); a FAILED or STOPPED job is reported through JobInfo.Status.
func (c *Client) WaitJob(ctx context.Context, id string, pollInterval time.Duration) (JobInfo, error) {
	if pollInterval <= 0 {
		pollInterval = time.Second
	}
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	var last JobInfo
	for {
		info, err := c.JobInfo(ctx, id)
		if err != nil {
			return last, fmt.Errorf("dashboard: wait for job %s (last status %q): %w", id, last.Status, err)
		}
		last = info
		if info.Status.Terminal() {
			return info, nil
		}
		select {
		case <-ctx.Done():
			return info, fmt.Errorf("dashboard: wait for job %s (last status %s): %w", id, info.Status, ctx.Err())
		case <-t.C:
		}
	}
}
