package raydeploy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// CheckLocal checks, before anything connects, what the cluster file names
// on this machine: every environment variable a *_env key names is set and
// not empty, every key_file, known_hosts and password file exists and is
// readable, and password files are not open to others (mode 0600 or
// stricter). Call it on the cluster as loaded (before WithDefaults), so that
// each problem names the field where the value was written: "ssh.key_file",
// "workers[1].sudo_password_env". The built-in known_hosts default is
// checked as ssh.known_hosts unless trust_on_first_use may create it. It
// returns a *ValidationError of *FieldError, naming variables and paths but
// never a value.
func (c *Cluster) CheckLocal() error {
	var p problems
	home, _ := os.UserHomeDir()
	file := func(field, path string, secret bool) {
		if path == "" {
			return
		}
		checkLocalFile(&p, field, expandHome(path, home), secret)
	}
	env := func(field, name string) {
		if name == "" {
			return
		}
		switch v, ok := os.LookupEnv(name); {
		case !ok:
			p.add(field, "environment variable %s is not set", name)
		case strings.TrimSpace(v) == "":
			p.add(field, "environment variable %s is empty", name)
		}
	}
	auth := func(prefix string, a Auth) {
		file(prefix+"key_file", a.KeyFile, true)
		env(prefix+"key_passphrase_env", a.KeyPassphraseEnv)
		env(prefix+"password_env", a.PasswordEnv)
		env(prefix+"sudo_password_env", a.SudoPasswordEnv)
		file(prefix+"sudo_password_file", a.SudoPasswordFile, true)
		if a.Agent {
			if sock := os.Getenv("SSH_AUTH_SOCK"); sock == "" {
				p.add(prefix+"agent", "no SSH agent: SSH_AUTH_SOCK is not set")
			}
		}
	}
	auth("ssh.", c.SSH.Auth)
	if j := c.SSH.Jump; j != nil {
		auth("ssh.jump.", j.Auth)
	}
	switch {
	case c.SSH.KnownHostsFile != "":
		if _, err := os.Stat(expandHome(c.SSH.KnownHostsFile, home)); err == nil || !c.SSH.TrustOnFirstUse {
			file("ssh.known_hosts", c.SSH.KnownHostsFile, false)
		}
	case !c.SSH.TrustOnFirstUse:
		if _, err := os.Stat(expandHome(DefaultKnownHostsFile, home)); err != nil {
			p.add("ssh.known_hosts", "not set, and the default %s: %v (set ssh.known_hosts, or trust_on_first_use: true to record new host keys)", expandHome(DefaultKnownHostsFile, home), errors.Unwrap(err))
		}
	}
	auth("head.", c.Head.Auth)
	for i, w := range c.Workers {
		auth(fmt.Sprintf("workers[%d].", i), w.Auth)
	}
	if c.Ray.TokenAuth.Enabled {
		name := c.Ray.TokenAuth.TokenEnv
		if name == "" {
			name = DefaultTokenEnv
		}
		env("ray.token_auth.token_env", name)
	}
	if c.MonitoringEnabled() {
		env("monitoring.grafana_password_env", c.Monitoring.GrafanaPasswordEnv)
		file("monitoring.grafana_password_file", c.Monitoring.GrafanaPasswordFile, true)
	}
	return p.err()
}

// checkLocalFile adds a problem unless path is a readable regular file;
// a secret must not be readable or writable by group or others.
func checkLocalFile(p *problems, field, path string, secret bool) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		p.add(field, "%s does not exist", path)
		return
	case err != nil:
		p.add(field, "%s: %v", path, errors.Unwrap(err))
		return
	case !fi.Mode().IsRegular():
		p.add(field, "%s is not a regular file", path)
		return
	case secret && fi.Mode().Perm()&0o077 != 0:
		p.add(field, "%s has mode %04o, open to other users; want 0600 or stricter (chmod 600 %s)", path, fi.Mode().Perm(), path)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		p.add(field, "%s is not readable: %v", path, errors.Unwrap(err))
		return
	}
	f.Close()
}

// ReadSecretFile reads a password file named by the config: mode 0600 or
// stricter, the first line without surrounding space, not empty. Errors name
// field and path, never the content.
func ReadSecretFile(field, path string) (Secret, error) {
	home, _ := os.UserHomeDir()
	path = expandHome(path, home)
	var p problems
	checkLocalFile(&p, field, path, true)
	if err := p.err(); err != nil {
		return Secret{}, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Secret{}, &ValidationError{Problems: []*FieldError{{Field: field, Msg: fmt.Sprintf("%s: %v", path, errors.Unwrap(err))}}}
	}
	line, _, _ := strings.Cut(string(data), "\n")
	line = strings.TrimSpace(line)
	if line == "" {
		return Secret{}, &ValidationError{Problems: []*FieldError{{Field: field, Msg: path + " is empty"}}}
	}
	return NewSecret(line), nil
}
