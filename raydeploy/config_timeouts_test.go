package raydeploy

import (
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/raydeploy/sdk/internal/sshx"
)

// TestSSHTimeoutsYAML: the ssh.timeouts section takes Go duration strings,
// is as strict as the rest of the file, and every value reaches the
// transport's config (the node's and the jump host's).
func TestSSHTimeoutsYAML(t *testing.T) {
	in := "cluster_name: a\nssh:\n  timeouts:\n    connect: 3s\n    connect_attempts: 2\n    connect_total: 6s\n" +
		"    keepalive_interval: 2s\n    keepalive_timeout: 1500ms\n  jump:\n    address: bastion\nhead:\n  address: 192.0.2.1\n"
	c, err := ParseYAML([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := SSHTimeouts{Connect: Duration(3 * time.Second), ConnectAttempts: 2, ConnectTotal: Duration(6 * time.Second),
		KeepaliveInterval: Duration(2 * time.Second), KeepaliveTimeout: Duration(1500 * time.Millisecond)}
	if diff := cmp.Diff(want, c.SSH.Timeouts); diff != "" {
		t.Fatalf("ssh.timeouts (-want +got):\n%s", diff)
	}
	if got := want.DeadNodeBound(); got != 12500*time.Millisecond {
		t.Errorf("DeadNodeBound = %s, want 2s + 1.5s + 6s + 3s", got)
	}
	roundTrip(t, c)
	conn := newConnector(c.WithDefaults(), slog.New(slog.DiscardHandler))
	cfg, err := conn.sshConfig(conn.cluster.Head)
	if err != nil {
		t.Fatal(err)
	}
	for who, got := range map[string]sshx.Config{"node": cfg, "jump": *cfg.Jump} {
		if got.ConnectTimeout != 3*time.Second || got.Retry.MaxAttempts != 2 || got.Retry.MaxElapsed != 6*time.Second ||
			got.KeepaliveInterval != 2*time.Second || got.KeepaliveTimeout != 1500*time.Millisecond {
			t.Errorf("%s's transport config: connect %s, attempts %d, total %s, keepalive %s/%s; want 3s, 2, 6s, 2s/1.5s", who,
				got.ConnectTimeout, got.Retry.MaxAttempts, got.Retry.MaxElapsed, got.KeepaliveInterval, got.KeepaliveTimeout)
		}
	}
}

// TestSSHTimeoutsDefaultsAreTheTransports: an absent section means the
// transport's own defaults, so a file without it behaves as before.
func TestSSHTimeoutsDefaultsAreTheTransports(t *testing.T) {
	d := (&Cluster{Name: "a"}).WithDefaults().SSH.Timeouts
	want := SSHTimeouts{Connect: Duration(sshx.DefaultConnectTimeout), ConnectAttempts: sshx.DefaultMaxAttempts,
		ConnectTotal: Duration(sshx.DefaultMaxElapsed), KeepaliveInterval: Duration(sshx.DefaultKeepaliveInterval),
		KeepaliveTimeout: Duration(sshx.DefaultKeepaliveInterval)}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("default ssh.timeouts (-transport +config):\n%s", diff)
	}
	if got := (SSHTimeouts{}).DeadNodeBound(); got != 70*time.Second {
		t.Errorf("default DeadNodeBound = %s, want 70s", got)
	}
	// Only the interval set: the timeout follows it.
	if got := (SSHTimeouts{KeepaliveInterval: Duration(4 * time.Second)}).WithDefaults().KeepaliveTimeout; got != Duration(4*time.Second) {
		t.Errorf("keepalive_timeout with only keepalive_interval: 4s = %s, want 4s", got)
	}
}

func TestSSHTimeoutsYAMLErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"unknown key", "cluster_name: a\nssh:\n  timeouts:\n    keepalive: 2s\n",
			[]string{`line 4: ssh.timeouts: unknown key "keepalive"`}},
		{"no unit", "cluster_name: a\nssh:\n  timeouts:\n    connect: 10\n",
			[]string{`line 4: ssh.timeouts.connect: invalid duration "10": want a number with a unit, like 10s, 500ms or 1m30s`}},
		{"not a scalar", "cluster_name: a\nssh:\n  timeouts:\n    connect_total: [1s]\n",
			[]string{`line 4: ssh.timeouts.connect_total: expected a duration, got !!seq`}},
		{"attempts not an integer", "cluster_name: a\nssh:\n  timeouts:\n    connect_attempts: many\n",
			[]string{`line 4: ssh.timeouts.connect_attempts: expected an integer, got !!str "many"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseYAML([]byte(tt.in))
			if err == nil {
				t.Fatalf("ParseYAML = %+v, want an error", c)
			}
			if diff := cmp.Diff(tt.want, problemStrings(t, err)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateSSHTimeouts(t *testing.T) {
	c := validCluster()
	c.SSH.Timeouts = SSHTimeouts{Connect: Duration(-time.Second), ConnectAttempts: -1, ConnectTotal: Duration(time.Second),
		KeepaliveInterval: Duration(500 * time.Millisecond), KeepaliveTimeout: Duration(time.Millisecond)}
	want := []string{
		"ssh.timeouts.connect: must be at least 1s (got -1s)",
		"ssh.timeouts.keepalive_interval: must be at least 1s (got 500ms)",
		"ssh.timeouts.keepalive_timeout: must be at least 1s (got 1ms)",
		"ssh.timeouts.connect_attempts: -1 out of range 1-100",
	}
	if diff := cmp.Diff(want, problemStrings(t, c.Validate())); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}
