package raydeploy

import (
	"context"
	"fmt"
	"time"

	"github.com/raydeploy/sdk/tts"
)

// The TTS service is deployed by Deployer methods rather than a seventh
// checkpoint: it is optional, touches no node (only Ray Serve's REST API on
// the head), can be planned, deployed, validated and removed on its own
// schedule after the cluster is up, and its image must already be the
// cluster's Ray image (tts.BuildImage; ray-deployment side-loads it). A
// checkpoint would put an optional application into every deploy's ledger
// and approval flow.

// DefaultTTSRequestTimeout bounds each request to the dashboard's Serve API.
const DefaultTTSRequestTimeout = 30 * time.Second

// ttsDashboard is how the tts package reaches the head's dashboard: through
// the head's SSH connection.
func (d *Deployer) ttsDashboard() (tts.Dashboard, error) {
	tok, err := d.cluster.rayToken()
	if err != nil {
		return tts.Dashboard{}, err
	}
	head := d.cluster.Nodes()[0]
	return tts.Dashboard{
		BaseURL:    fmt.Sprintf("http://127.0.0.1:%d", d.cluster.Ray.Ports.Dashboard),
		Token:      tok,
		HTTPClient: d.conn.httpClient(head, DefaultTTSRequestTimeout),
	}, nil
}

// PlanTTS returns what DeployTTS would change on the cluster's Ray Serve
// (tts.Plan: create, update or none, and the other applications it keeps).
func (d *Deployer) PlanTTS(ctx context.Context, svc tts.Service) (tts.Plan, error) {
	db, err := d.ttsDashboard()
	if err != nil {
		return tts.Plan{}, err
	}
	return svc.Plan(ctx, db)
}

// DeployTTS applies a plan of PlanTTS and waits until the application is
// RUNNING; a failed deploy is a *tts.DeployError with Serve's message. The
// cluster's Ray image must hold the app (see tts.BuildImage).
func (d *Deployer) DeployTTS(ctx context.Context, svc tts.Service, p tts.Plan) error {
	db, err := d.ttsDashboard()
	if err != nil {
		return err
	}
	return svc.Deploy(ctx, db, p)
}

// RemoveTTS removes the service's Serve application, and only it.
func (d *Deployer) RemoveTTS(ctx context.Context, svc tts.Service) error {
	db, err := d.ttsDashboard()
	if err != nil {
		return err
	}
	return svc.Remove(ctx, db)
}

// TTSClient returns a client of the deployed service on the head's Serve
// proxy, reached through the head's SSH connection. Bound its calls with
// their contexts.
func (d *Deployer) TTSClient(svc tts.Service) (*tts.Client, error) {
	svc = svc.WithDefaults()
	prefix := svc.RoutePrefix
	if prefix == "/" {
		prefix = ""
	}
	return tts.NewClient(tts.ClientConfig{
		BaseURL:    fmt.Sprintf("http://127.0.0.1:%d%s", svc.HTTPPort, prefix),
		HTTPClient: d.conn.httpClient(d.cluster.Nodes()[0], 0),
	})
}

// ValidateTTS runs the functional gate (tts.Gate) against the deployed service.
func (d *Deployer) ValidateTTS(ctx context.Context, svc tts.Service, opts tts.GateOptions) (tts.GateReport, error) {
	c, err := d.TTSClient(svc)
	if err != nil {
		return tts.GateReport{}, err
	}
	return tts.Gate(ctx, c, opts)
}
