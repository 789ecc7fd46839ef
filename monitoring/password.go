package monitoring

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// AdminPasswordFile is the name of the Grafana admin password file, in the
// local state dir and in the head's Grafana secrets dir (mounted read-only
// into the container; Grafana reads it through GF_SECURITY_ADMIN_PASSWORD__FILE).
const AdminPasswordFile = "grafana-admin-password"

// minPasswordLen is the shortest admin password accepted from the user.
const minPasswordLen = 12

// AdminPassword returns the Grafana admin password and the file holding it:
// the file AdminPasswordFile in stateDir (dir mode 0700, file mode 0600),
// created with a random password (crypto/rand, 26 characters, 130 bits) on
// the first call and read on every later one. The password is never logged;
// callers must not print it.
func AdminPassword(stateDir string) (secret string, path string, err error) {
	if stateDir == "" {
		return "", "", errors.New("monitoring: admin password: empty state dir")
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return "", "", fmt.Errorf("monitoring: admin password: %w", err)
	}
	path = filepath.Join(stateDir, AdminPasswordFile)
	if secret, err := readPassword(path); err == nil {
		return secret, path, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", "", err
	}
	// Write a temp file and hard-link it into place: the link fails when
	// another process won the race, and then its password is the one.
	tmp, err := os.CreateTemp(stateDir, ".grafana-admin-password-*")
	if err != nil {
		return "", "", fmt.Errorf("monitoring: admin password: %w", err)
	}
	defer os.Remove(tmp.Name())
	secret = rand.Text()
	if _, err := tmp.WriteString(secret + "\n"); err != nil {
		tmp.Close()
		return "", "", fmt.Errorf("monitoring: admin password: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", "", fmt.Errorf("monitoring: admin password: sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return "", "", fmt.Errorf("monitoring: admin password: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			secret, err = readPassword(path)
			return secret, path, err
		}
		return "", "", fmt.Errorf("monitoring: admin password: %w", err)
	}
	return secret, path, nil
}

func readPassword(path string) (string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if info.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("monitoring: admin password file %s has mode %04o; want 0600 (chmod 600 it)", path, info.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("monitoring: admin password: %w", err)
	}
	secret := strings.TrimSpace(string(data))
	if len(secret) < minPasswordLen {
		return "", fmt.Errorf("monitoring: admin password file %s: shorter than %d characters", path, minPasswordLen)
	}
	return secret, nil
}

// AdminPassword is the package function AdminPassword, except that the
// password is read from s.GrafanaPasswordFile when it is set (mode 0600 or
// stricter), and when s.GrafanaPasswordEnv names a set environment
// variable, its value is the password (and path is empty). A user's password shorter than 12
// characters is refused.
func (s Stack) AdminPassword(stateDir string) (secret string, path string, err error) {
	if s.GrafanaPasswordFile != "" {
		secret, err := readPassword(s.GrafanaPasswordFile)
		if err != nil {
			return "", "", fmt.Errorf("monitoring: grafana_password_file: %w", err)
		}
		return secret, s.GrafanaPasswordFile, nil
	}
	if s.GrafanaPasswordEnv != "" {
		if v, ok := os.LookupEnv(s.GrafanaPasswordEnv); ok {
			v = strings.TrimSpace(v)
			if len(v) < minPasswordLen {
				return "", "", fmt.Errorf("monitoring: grafana_password_env: $%s is shorter than %d characters", s.GrafanaPasswordEnv, minPasswordLen)
			}
			return v, "", nil
		}
	}
	return AdminPassword(stateDir)
}
