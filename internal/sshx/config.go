package sshx

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// Defaults applied by Dial to zero fields of Config.
const (
	DefaultPort              = 22
	DefaultUser              = "root"
	DefaultConnectTimeout    = 10 * time.Second
	DefaultKeepaliveInterval = 15 * time.Second
	DefaultMaxAttempts       = 5
	DefaultMaxElapsed        = 30 * time.Second
	DefaultInitialInterval   = 200 * time.Millisecond
)

// redacted is what a Secret prints as.
const redacted = "[redacted]"

// Secret is a string that never prints: String, GoString, LogValue and
// MarshalText all return "[redacted]". Use Reveal to get the value.
type Secret string

// String implements fmt.Stringer with redaction.
func (s Secret) String() string { return redacted }

// GoString implements fmt.GoStringer with redaction.
func (s Secret) GoString() string { return redacted }

// LogValue implements slog.LogValuer with redaction.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText implements encoding.TextMarshaler with redaction, so a Secret
// never reaches saved state.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }

// Auth says how to authenticate to a node. Methods are offered in this
// order: Signers, KeyFile, Agent, Password.
type Auth struct {
	// KeyFile is a private key file (OpenSSH, PEM or PKCS#8).
	KeyFile string
	// KeyPassphraseEnv names the environment variable holding the key
	// file's passphrase.
	KeyPassphraseEnv string
	// Agent offers the keys of the agent at SSH_AUTH_SOCK.
	Agent bool
	// Password is the login password; it is also the sudo password unless
	// SudoPassword or SudoPasswordEnv is set.
	Password Secret
	// PasswordEnv names the environment variable holding the password,
	// used when Password is empty.
	PasswordEnv string
	// Signers are in-memory keys.
	Signers []ssh.Signer
	// SudoPassword is the password sudo asks for, when it differs from the
	// login password (or there is none: key logins).
	SudoPassword Secret
	// SudoPasswordEnv names the environment variable holding the sudo
	// password, used when SudoPassword is empty.
	SudoPasswordEnv string
}

// LogValue describes which methods are configured, never their secrets.
func (a Auth) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("key_file", a.KeyFile),
		slog.Bool("agent", a.Agent),
		slog.Bool("password", a.Password != "" || a.PasswordEnv != ""),
		slog.Int("signers", len(a.Signers)),
	)
}

// password returns the configured password, from Password or PasswordEnv.
// sudoPassword returns the password for sudo: SudoPassword, SudoPasswordEnv,
// else the login password.
func (a Auth) sudoPassword() Secret {
	if a.SudoPassword != "" {
		return a.SudoPassword
	}
	if a.SudoPasswordEnv != "" {
		if v := os.Getenv(a.SudoPasswordEnv); v != "" {
			return Secret(v)
		}
	}
	return a.password()
}

func (a Auth) password() Secret {
	if a.Password != "" {
		return a.Password
	}
	if a.PasswordEnv != "" {
		return Secret(os.Getenv(a.PasswordEnv))
	}
	return ""
}

// RetryPolicy bounds Dial's retries of transient failures.
type RetryPolicy struct {
	// MaxAttempts is the number of connection attempts, 1 meaning no retry
	// (0: DefaultMaxAttempts).
	MaxAttempts int
	// MaxElapsed bounds the total time spent retrying: no attempt starts
	// after it, so a dial gives up within MaxElapsed + ConnectTimeout (0:
	// DefaultMaxElapsed).
	MaxElapsed time.Duration
	// InitialInterval is the first backoff delay (0: DefaultInitialInterval).
	InitialInterval time.Duration
}

// Config is how to reach one node.
type Config struct {
	// Host is the node's address or name.
	Host string
	// Port is the SSH port (0: 22).
	Port int
	// User is the login user (empty: root).
	User string
	// Auth is how to authenticate.
	Auth Auth
	// KnownHostsFile is the known_hosts file host keys are checked against.
	// Required unless HostKeys is set.
	KnownHostsFile string
	// TrustOnFirstUse accepts and records the key of a host that is not in
	// KnownHostsFile yet. A host whose key is known is always checked.
	TrustOnFirstUse bool
	// HostKeys, when set, replaces KnownHostsFile and TrustOnFirstUse; share
	// one among many dials of the same file (Pool does).
	HostKeys *HostKeys
	// Jump is a bastion to reach the node through. Its KnownHostsFile,
	// HostKeys and Logger default to this Config's.
	Jump *Config
	// ConnectTimeout bounds each attempt's TCP connect and SSH handshake
	// (0: DefaultConnectTimeout).
	ConnectTimeout time.Duration
	// KeepaliveInterval is the period of keepalive requests (0:
	// DefaultKeepaliveInterval; negative: off).
	KeepaliveInterval time.Duration
	// KeepaliveTimeout is how long a keepalive request may go unanswered
	// before the connection counts as dead and is closed (0: the
	// KeepaliveInterval). A node that stops answering is noticed within
	// KeepaliveInterval + KeepaliveTimeout.
	KeepaliveTimeout time.Duration
	// Retry bounds retries of transient dial failures.
	Retry RetryPolicy
	// Logger receives debug and warning records (nil: discard).
	Logger *slog.Logger
}

// Addr returns the node's "host:port".
func (c Config) Addr() string {
	port := c.Port
	if port == 0 {
		port = DefaultPort
	}
	return net.JoinHostPort(c.Host, strconv.Itoa(port))
}

// withDefaults returns c with zero fields filled in.
func (c Config) withDefaults() Config {
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.User == "" {
		c.User = DefaultUser
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.KeepaliveInterval == 0 {
		c.KeepaliveInterval = DefaultKeepaliveInterval
	}
	if c.KeepaliveTimeout <= 0 {
		c.KeepaliveTimeout = c.KeepaliveInterval
	}
	if c.Retry.MaxAttempts == 0 {
		c.Retry.MaxAttempts = DefaultMaxAttempts
	}
	if c.Retry.MaxElapsed == 0 {
		c.Retry.MaxElapsed = DefaultMaxElapsed
	}
	if c.Retry.InitialInterval == 0 {
		c.Retry.InitialInterval = DefaultInitialInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// validate reports configuration mistakes (never retryable).
func (c Config) validate() error {
	switch {
	case c.Host == "":
		return NonRetryable(errors.New("sshx: Config.Host is empty"))
	case c.Port < 0 || c.Port > 65535:
		return NonRetryable(fmt.Errorf("sshx: Config.Port %d out of range", c.Port))
	case c.HostKeys == nil && c.KnownHostsFile == "":
		return NonRetryable(errors.New("sshx: Config.KnownHostsFile is empty: host keys must be verified " +
			"(set TrustOnFirstUse to record keys of new hosts)"))
	}
	return nil
}

// authMethods builds the SSH auth methods. The returned cleanup closes the
// agent connection, if any; call it once the handshake is over.
func (a Auth) authMethods() (methods []ssh.AuthMethod, cleanup func(), err error) {
	cleanup = func() {}
	var signers []ssh.Signer
	signers = append(signers, a.Signers...)
	if a.KeyFile != "" {
		s, err := loadKeyFile(a.KeyFile, a.KeyPassphraseEnv)
		if err != nil {
			return nil, cleanup, NonRetryable(err)
		}
		signers = append(signers, s)
	}
	if len(signers) > 0 {
		methods = append(methods, ssh.PublicKeys(signers...))
	}
	if a.Agent {
		sock := os.Getenv("SSH_AUTH_SOCK")
		if sock == "" {
			return nil, cleanup, NonRetryable(errors.New("sshx: Auth.Agent is set but SSH_AUTH_SOCK is empty"))
		}
		ac, err := net.Dial("unix", sock)
		if err != nil {
			return nil, cleanup, NonRetryable(fmt.Errorf("sshx: connect to ssh agent at SSH_AUTH_SOCK: %w", err))
		}
		cleanup = func() { _ = ac.Close() }
		methods = append(methods, ssh.PublicKeysCallback(agent.NewClient(ac).Signers))
	}
	if pw := a.password(); pw != "" {
		methods = append(methods, ssh.Password(pw.Reveal()))
		methods = append(methods, ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
			answers := make([]string, len(questions))
			for i := range answers {
				answers[i] = pw.Reveal()
			}
			return answers, nil
		}))
	}
	if len(methods) == 0 {
		cleanup()
		return nil, func() {}, NonRetryable(errors.New("sshx: no authentication method configured " +
			"(set Auth.KeyFile, Auth.Signers, Auth.Agent or Auth.Password)"))
	}
	return methods, cleanup, nil
}

// loadKeyFile reads a private key, decrypting it with the passphrase from
// the environment variable passEnv when it is encrypted.
func loadKeyFile(path, passEnv string) (ssh.Signer, error) {
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sshx: read key file: %w", err)
	}
	s, err := ssh.ParsePrivateKey(pemBytes)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if passEnv == "" || os.Getenv(passEnv) == "" {
			return nil, fmt.Errorf("sshx: key file %s is encrypted: put its passphrase in an environment "+
				"variable and name it in Auth.KeyPassphraseEnv", path)
		}
		s, err = ssh.ParsePrivateKeyWithPassphrase(pemBytes, []byte(os.Getenv(passEnv)))
		if err != nil {
			return nil, fmt.Errorf("sshx: decrypt key file %s with the passphrase from $%s: %w", path, passEnv, err)
		}
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sshx: parse key file %s: %w", path, err)
	}
	return s, nil
}
