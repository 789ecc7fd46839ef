package main

import (
	"bufio"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// rayVersion is the version the stand-in claims (RAY_STANDIN_VERSION, default 2.58.0).
func rayVersion() string {
	if v := os.Getenv("RAY_STANDIN_VERSION"); v != "" {
		return v
	}
	return "2.58.0"
}

// newNodeID returns a random node id shaped like Ray's (28 bytes, hex).
func newNodeID() string {
	b := make([]byte, 28)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// randomSuffix returns n random characters of [a-zA-Z0-9] (Ray's submission ids).
func randomSuffix(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// memInfo returns MemTotal and MemAvailable in bytes from /proc/meminfo.
func memInfo() (total, available int64, err error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			continue
		}
		switch fields[0] {
		case "MemTotal:":
			total = kb * 1024
		case "MemAvailable:":
			available = kb * 1024
		}
	}
	if total == 0 {
		return 0, 0, errors.New("MemTotal not found in /proc/meminfo")
	}
	return total, available, sc.Err()
}

// loadAvg1 returns the one-minute load average (0 when unknown).
func loadAvg1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// defaultNodeIP guesses the address other machines reach this one at, the way
// Ray does: the source address of a route to a public address (no packet is sent).
func defaultNodeIP() string {
	c, err := net.Dial("udp", "8.8.8.8:80")
	if err != nil {
		return "127.0.0.1"
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String()
}

// authConfig is Ray's token authentication (RAY_AUTH_MODE=token).
type authConfig struct {
	enabled bool
	token   string
}

// loadAuth reads RAY_AUTH_MODE and RAY_AUTH_TOKEN.
func loadAuth() (authConfig, error) {
	mode := os.Getenv("RAY_AUTH_MODE")
	switch mode {
	case "", "disabled":
		return authConfig{}, nil
	case "token":
		tok := os.Getenv("RAY_AUTH_TOKEN")
		if tok == "" {
			return authConfig{}, errors.New("RAY_AUTH_MODE=token but RAY_AUTH_TOKEN is empty")
		}
		return authConfig{enabled: true, token: tok}, nil
	}
	return authConfig{}, fmt.Errorf("unknown RAY_AUTH_MODE %q (want token or disabled)", mode)
}

// wrap requires the token on every request when auth is enabled: 401 when
// missing, 403 when wrong.
func (a authConfig) wrap(h http.Handler) http.Handler {
	if !a.enabled {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := ""
		for _, hv := range []string{r.Header.Get("Authorization"), r.Header.Get("X-Ray-Authorization")} {
			if hv != "" {
				got = strings.TrimSpace(strings.TrimPrefix(hv, "Bearer "))
				break
			}
		}
		if got == "" {
			http.Error(w, "Unauthorized: Missing authentication token", http.StatusUnauthorized)
			return
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(a.token)) != 1 {
			http.Error(w, "Forbidden: Invalid authentication token", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}
