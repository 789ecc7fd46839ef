package raydash

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
)

// Serve application statuses (Ray's ApplicationStatus).
const (
	AppNotStarted   = "NOT_STARTED"
	AppDeploying    = "DEPLOYING"
	AppDeployFailed = "DEPLOY_FAILED"
	AppRunning      = "RUNNING"
	AppUnhealthy    = "UNHEALTHY"
	AppDeleting     = "DELETING"
)

// Serve deployment statuses (Ray's DeploymentStatus).
const (
	DeploymentUpdating    = "UPDATING"
	DeploymentHealthy     = "HEALTHY"
	DeploymentUnhealthy   = "UNHEALTHY"
	DeploymentUpscaling   = "UPSCALING"
	DeploymentDownscaling = "DOWNSCALING"
)

// ServeInstanceDetails is the part of GET /api/serve/applications/ the SDK uses.
type ServeInstanceDetails struct {
	// ProxyLocation is where Serve runs HTTP proxies (e.g. "EveryNode").
	ProxyLocation string `json:"proxy_location,omitempty"`
	// HTTPOptions holds the proxies' host and port.
	HTTPOptions *ServeHTTPOptions `json:"http_options,omitempty"`
	// DeployMode is "MULTI_APP" on current Ray.
	DeployMode string `json:"deploy_mode,omitempty"`
	// Proxies maps node id to that node's proxy.
	Proxies map[string]ServeProxy `json:"proxies,omitempty"`
	// Applications maps application name to its state.
	Applications map[string]ServeApplication `json:"applications"`
}

// ServeHTTPOptions are the Serve proxies' HTTP settings.
type ServeHTTPOptions struct {
	// Host the proxies bind.
	Host string `json:"host,omitempty"`
	// Port the proxies listen on (8000 by default).
	Port int `json:"port,omitempty"`
}

// ServeProxy is one node's Serve proxy.
type ServeProxy struct {
	// NodeID is the node the proxy runs on.
	NodeID string `json:"node_id"`
	// NodeIP is that node's address.
	NodeIP string `json:"node_ip"`
	// Status is HEALTHY, UNHEALTHY, STARTING, DRAINING...
	Status string `json:"status"`
}

// ServeApplication is one Serve application's state.
type ServeApplication struct {
	// Name of the application.
	Name string `json:"name"`
	// RoutePrefix is the HTTP prefix ("" when the app has no route).
	RoutePrefix string `json:"route_prefix,omitempty"`
	// Status is one of the App* constants.
	Status string `json:"status"`
	// Message explains the status (the error of a failed deploy).
	Message string `json:"message"`
	// LastDeployedTimeS is the Unix time of the last deploy, seconds.
	LastDeployedTimeS float64 `json:"last_deployed_time_s,omitempty"`
	// DeployedAppConfig is the application's config as last deployed
	// through the REST API (null for one deployed otherwise).
	DeployedAppConfig json.RawMessage `json:"deployed_app_config,omitempty"`
	// Deployments maps deployment name to its state.
	Deployments map[string]ServeDeployment `json:"deployments"`
}

// ServeDeployment is one deployment's state.
type ServeDeployment struct {
	// Name of the deployment.
	Name string `json:"name"`
	// Status is one of the Deployment* constants.
	Status string `json:"status"`
	// Message explains the status.
	Message string `json:"message"`
	// Replicas are the deployment's running replicas.
	Replicas []ServeReplica `json:"replicas"`
}

// ServeReplica is one replica of a deployment.
type ServeReplica struct {
	// ReplicaID is "app#deployment#suffix".
	ReplicaID string `json:"replica_id"`
	// State is STARTING, UPDATING, RECOVERING, RUNNING or STOPPING.
	State string `json:"state"`
	// NodeID is where the replica runs.
	NodeID string `json:"node_id,omitempty"`
	// NodeIP is that node's address.
	NodeIP string `json:"node_ip,omitempty"`
	// PID is the replica's process id.
	PID int `json:"pid,omitempty"`
}

const serveAppsPath = "/api/serve/applications/"

// PutServeApplications deploys a whole Serve config (PUT
// /api/serve/applications/). It is declarative: applications deployed earlier
// through this API and not in config are deleted. A config Ray rejects comes
// back as an *HTTPError with status 400 and Ray's validation text.
func (c *Client) PutServeApplications(ctx context.Context, config json.RawMessage) error {
	if !json.Valid(config) {
		return errors.New("dashboard: serve config is not valid JSON")
	}
	_, err := c.request(ctx, http.MethodPut, serveAppsPath, nil, config)
	return err
}

// ServeApplications returns the state of Serve and its applications
// (GET /api/serve/applications/).
func (c *Client) ServeApplications(ctx context.Context) (ServeInstanceDetails, error) {
	var out ServeInstanceDetails
	err := c.doJSON(ctx, http.MethodGet, serveAppsPath, nil, nil, &out)
	return out, err
}

// DeleteServeApplications shuts Serve down with all its applications
// (DELETE /api/serve/applications/).
func (c *Client) DeleteServeApplications(ctx context.Context) error {
	_, err := c.request(ctx, http.MethodDelete, serveAppsPath, nil, nil)
	return err
}
