package raydeploy

import (
	"encoding/json"
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// Built-in SSH timeouts, used when the ssh.timeouts section leaves a field
// unset (the transport's own defaults).
const (
	DefaultSSHConnectTimeout    = 10 * time.Second
	DefaultSSHConnectAttempts   = 5
	DefaultSSHConnectTotal      = 30 * time.Second
	DefaultSSHKeepaliveInterval = 15 * time.Second
)

// MinSSHTimeout is the shortest accepted SSH timeout or interval.
const MinSSHTimeout = time.Second

// MaxSSHConnectAttempts is the most connection attempts a dial may make.
const MaxSSHConnectAttempts = 100

// Duration is a time.Duration that YAML and JSON write as a Go duration
// string ("10s", "1m30s"); a bare number is refused (it has no unit).
type Duration time.Duration

// UnmarshalYAML accepts a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: cannot unmarshal %s into a duration", n.Line, kindName(n.Kind))}}
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*d = v
	return nil
}

// MarshalYAML writes the duration as a string, e.g. "15s".
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalJSON accepts a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string like \"10s\": %w", err)
	}
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalJSON writes the duration as a string, e.g. "15s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// String is the Go duration string.
func (d Duration) String() string { return time.Duration(d).String() }

func parseDuration(s string) (Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: want a number with a unit, like 10s, 500ms or 1m30s", s)
	}
	return Duration(v), nil
}

// SSHTimeouts bound how long the SSH transport waits on a node that stops
// answering. Zero fields take the built-in defaults (the Default* constants).
//
// A node that freezes or is cut off while connected is noticed within
// KeepaliveInterval + KeepaliveTimeout (the connection is closed and its
// steps fail with "ssh connection closed ... no answer to keepalive"); a
// dial to a node that does not answer gives up within ConnectTotal +
// Connect (no attempt starts after ConnectTotal, each lasts at most
// Connect). DeadNodeBound is the sum: how long a step on such a node takes
// at most to fail.
type SSHTimeouts struct {
	// Connect bounds each connection attempt: TCP connect and SSH handshake
	// (default 10s).
	Connect Duration `json:"connect,omitempty" yaml:"connect,omitempty"`
	// ConnectAttempts is how many attempts a dial makes before it gives up,
	// 1 meaning no retry (default 5).
	ConnectAttempts int `json:"connect_attempts,omitempty" yaml:"connect_attempts,omitempty"`
	// ConnectTotal bounds a dial's retries: no attempt starts after this
	// long (default 30s).
	ConnectTotal Duration `json:"connect_total,omitempty" yaml:"connect_total,omitempty"`
	// KeepaliveInterval is the period of the keepalive requests sent on every
	// connection (default 15s).
	KeepaliveInterval Duration `json:"keepalive_interval,omitempty" yaml:"keepalive_interval,omitempty"`
	// KeepaliveTimeout is how long a keepalive may go unanswered before the
	// connection counts as dead and is closed (default: KeepaliveInterval).
	KeepaliveTimeout Duration `json:"keepalive_timeout,omitempty" yaml:"keepalive_timeout,omitempty"`
}

// WithDefaults returns t with every zero field set to its default.
func (t SSHTimeouts) WithDefaults() SSHTimeouts {
	if t.Connect == 0 {
		t.Connect = Duration(DefaultSSHConnectTimeout)
	}
	if t.ConnectAttempts == 0 {
		t.ConnectAttempts = DefaultSSHConnectAttempts
	}
	if t.ConnectTotal == 0 {
		t.ConnectTotal = Duration(DefaultSSHConnectTotal)
	}
	if t.KeepaliveInterval == 0 {
		t.KeepaliveInterval = Duration(DefaultSSHKeepaliveInterval)
	}
	if t.KeepaliveTimeout == 0 {
		t.KeepaliveTimeout = t.KeepaliveInterval
	}
	return t
}

// DeadNodeBound is the longest a step on a node that stops answering (frozen,
// cut off the network) waits before it fails, with defaults applied:
// KeepaliveInterval + KeepaliveTimeout to notice the lost connection, then
// ConnectTotal + Connect for the redial that gives up. With the defaults it
// is 70s.
func (t SSHTimeouts) DeadNodeBound() time.Duration {
	d := t.WithDefaults()
	return time.Duration(d.KeepaliveInterval + d.KeepaliveTimeout + d.ConnectTotal + d.Connect)
}

func (t SSHTimeouts) validate(p *problems, path string) {
	for _, f := range []struct {
		name string
		d    Duration
	}{
		{"connect", t.Connect},
		{"connect_total", t.ConnectTotal},
		{"keepalive_interval", t.KeepaliveInterval},
		{"keepalive_timeout", t.KeepaliveTimeout},
	} {
		if f.d != 0 && time.Duration(f.d) < MinSSHTimeout {
			p.add(path+f.name, "must be at least %s (got %s)", MinSSHTimeout, f.d)
		}
	}
	if t.ConnectAttempts != 0 && (t.ConnectAttempts < 1 || t.ConnectAttempts > MaxSSHConnectAttempts) {
		p.add(path+"connect_attempts", "%d out of range 1-%d", t.ConnectAttempts, MaxSSHConnectAttempts)
	}
}
