package sshx

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeys verifies host keys against one known_hosts file and, with
// trust-on-first-use, records the keys of hosts not in it yet. It is safe
// for concurrent use; appends are serialized by a mutex and an exclusive
// flock on the file (so separate processes and separate HostKeys values on
// the same file are safe too), and the file is re-read before each decision
// (re-parsed only when its bytes changed: parsing every line on every dial
// made connecting N nodes cost N² line parses).
type HostKeys struct {
	path string
	tofu bool
	mu   sync.Mutex

	file fileBytes // the file as last read

	cacheMu   sync.Mutex
	cachedVer uint64              // the file version cached was parsed from
	cached    ssh.HostKeyCallback // nil: nothing cached

	linesMu  sync.Mutex
	linesVer uint64      // the file version lines was parsed from
	lines    *knownLines // nil: nothing parsed
}

// fileBytes reads a file again and again without allocating while its
// bytes stay the same (a thousand dials re-read known_hosts a thousand
// times): it reads into a buffer it keeps and counts a new version only
// when the bytes differ from the last read.
type fileBytes struct {
	mu      sync.Mutex
	scratch []byte
	content []byte
	version uint64 // 0: never read
}

// read returns the file's bytes (not to be modified) and their version.
func (fb *fileBytes) read(path string) ([]byte, uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if st, err := f.Stat(); err == nil && cap(fb.scratch) < int(st.Size())+512 {
		fb.scratch = make([]byte, 0, int(st.Size())+512)
	}
	buf := fb.scratch[:0]
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, 4096)
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, 0, err
		}
	}
	fb.scratch = buf
	if fb.version == 0 || !bytes.Equal(buf, fb.content) {
		fb.content = bytes.Clone(buf)
		fb.version++
	}
	return fb.content, fb.version, nil
}

// knownLines are the plain (unmarked) lines of a known_hosts file, parsed
// once per content, with an index by host name so that finding a host's
// lines does not scan the file: connecting N nodes costs N lookups, not N
// passes over N lines.
type knownLines struct {
	all    []knownLine
	byHost map[string][]int // lower-case host -> lines whose patterns are plain names
	other  []int            // lines with a hashed, wildcard or negated pattern
}

type knownLine struct {
	hosts []string
	key   ssh.PublicKey
	line  int // 1-based
}

// NewHostKeys returns a HostKeys for the known_hosts file at path.
func NewHostKeys(path string, trustOnFirstUse bool) *HostKeys {
	return &HostKeys{path: path, tofu: trustOnFirstUse}
}

// Path returns the known_hosts file.
func (h *HostKeys) Path() string { return h.path }

// load reads the file and parses it unless it holds the same bytes as when
// it was last parsed; a missing file is an empty one.
func (h *HostKeys) load() (ssh.HostKeyCallback, error) {
	_, ver, rerr := h.file.read(h.path)
	if rerr == nil {
		h.cacheMu.Lock()
		cb := h.cached
		same := cb != nil && h.cachedVer == ver
		h.cacheMu.Unlock()
		if same {
			return cb, nil
		}
	}
	cb, err := knownhosts.New(h.path)
	if errors.Is(err, fs.ErrNotExist) {
		return func(string, net.Addr, ssh.PublicKey) error { return &knownhosts.KeyError{} }, nil
	}
	if err != nil {
		return nil, NonRetryable(fmt.Errorf("sshx: read known_hosts %s: %w", h.path, err))
	}
	// Cache only what was certainly parsed: the same bytes before and after.
	if _, after, err := h.file.read(h.path); rerr == nil && err == nil && after == ver {
		h.cacheMu.Lock()
		h.cachedVer, h.cached = ver, cb
		h.cacheMu.Unlock()
	}
	return cb, nil
}

// Callback returns the host key callback for the node at addr ("host:port").
func (h *HostKeys) Callback(addr string) ssh.HostKeyCallback {
	return func(_ string, remote net.Addr, key ssh.PublicKey) error {
		return h.check(addr, remote, key)
	}
}

func (h *HostKeys) check(addr string, remote net.Addr, key ssh.PublicKey) error {
	cb, err := h.load()
	if err != nil {
		return err
	}
	err = cb(addr, remote, key)
	if err == nil {
		return nil
	}
	var kerr *knownhosts.KeyError
	if errors.As(err, &kerr) && len(kerr.Want) == 0 {
		// The knownhosts package applies a pattern without a port (a
		// wildcard, a plain name) only on port 22: a host on another port
		// with such a line is "unknown" to it. Any recorded key makes it a
		// mismatch here, never a host to trust on first use.
		if err := h.recordedElsewhere(addr, key); err != nil {
			return err
		}
		if h.tofu {
			return h.trust(addr, remote, key)
		}
	}
	return h.explain(addr, key, err)
}

// recordedElsewhere returns nil when no line of the file names addr's host
// under any pattern or port, or when one of them holds exactly key; else
// the mismatch, naming the recorded keys' lines.
func (h *HostKeys) recordedElsewhere(addr string, key ssh.PublicKey) error {
	rec, err := h.recorded(addr)
	if err != nil {
		return err
	}
	if len(rec) == 0 {
		return nil
	}
	for _, k := range rec {
		if bytes.Equal(k.Key.Marshal(), key.Marshal()) {
			return nil
		}
	}
	return h.explain(addr, key, &knownhosts.KeyError{Want: rec})
}

// recorded returns every key the file records for addr's host: lines whose
// pattern names the host without a port (plain, hashed or wildcard: they
// count for every port, where the knownhosts package applies them to port
// 22 only) and [host]:port patterns matching addr's port (wildcards allowed;
// a line for another explicit port is another service and does not count).
// @revoked and @cert-authority lines are skipped.
func (h *HostKeys) recorded(addr string) ([]knownhosts.KnownKey, error) {
	kl, err := h.parsedLines()
	if err != nil || kl == nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = addr, "22"
	}
	cand := append(slices.Clone(kl.byHost[strings.ToLower(host)]), kl.other...)
	slices.Sort(cand) // file order
	var out []knownhosts.KnownKey
	for _, li := range slices.Compact(cand) {
		l := kl.all[li]
		if hostPatternsMatch(l.hosts, host, port) {
			out = append(out, knownhosts.KnownKey{Key: l.key, Filename: h.path, Line: l.line})
		}
	}
	return out, nil
}

// parsedLines returns the file's plain lines, parsed again only when its
// bytes changed; nil when there is no file.
func (h *HostKeys) parsedLines() (*knownLines, error) {
	data, ver, err := h.file.read(h.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, NonRetryable(fmt.Errorf("sshx: read known_hosts %s: %w", h.path, err))
	}
	h.linesMu.Lock()
	defer h.linesMu.Unlock()
	if h.lines != nil && h.linesVer == ver {
		return h.lines, nil
	}
	kl := &knownLines{byHost: map[string][]int{}}
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		marker, hosts, pub, _, _, err := ssh.ParseKnownHosts(line)
		if err != nil || marker != "" {
			continue // knownhosts.New reports malformed lines
		}
		idx := len(kl.all)
		kl.all = append(kl.all, knownLine{hosts: hosts, key: pub, line: i + 1})
		var names []string
		for _, p := range hosts {
			name := strings.ToLower(p)
			if j := strings.LastIndex(name, "]:"); strings.HasPrefix(name, "[") && j > 0 {
				name = name[1:j]
			}
			if strings.HasPrefix(p, "|1|") || strings.HasPrefix(p, "!") || strings.ContainsAny(name, "*?") {
				names = nil
				break
			}
			names = append(names, name)
		}
		if names == nil {
			kl.other = append(kl.other, idx)
			continue
		}
		for _, name := range names {
			if l := kl.byHost[name]; len(l) == 0 || l[len(l)-1] != idx {
				kl.byHost[name] = append(l, idx)
			}
		}
	}
	h.linesVer, h.lines = ver, kl
	return kl, nil
}

// hostPatternsMatch reports whether the patterns of one known_hosts line
// name host (on port, for a [host]:port pattern): some pattern matches and
// no negated one does.
func hostPatternsMatch(patterns []string, host, port string) bool {
	host = strings.ToLower(host)
	bracketed := "[" + host + "]:" + port
	matched := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		var hit bool
		if strings.HasPrefix(p, "|1|") {
			hit = hashedMatch(p, host) || hashedMatch(p, bracketed)
		} else {
			p = strings.ToLower(p)
			if i := strings.LastIndex(p, "]:"); strings.HasPrefix(p, "[") && i > 0 {
				// [host]:port names one port (wildcards allowed in both).
				hit = globMatch(p[1:i], host) && globMatch(p[i+2:], port)
			} else {
				hit = globMatch(p, host) // no port: the host, whatever its port
			}
		}
		if hit && neg {
			return false
		}
		matched = matched || hit
	}
	return matched
}

// hashedMatch checks a |1|salt|hash pattern (HMAC-SHA1 of the host name).
func hashedMatch(pattern, host string) bool {
	parts := strings.Split(pattern, "|")
	if len(parts) != 4 {
		return false
	}
	salt, err1 := base64.StdEncoding.DecodeString(parts[2])
	want, err2 := base64.StdEncoding.DecodeString(parts[3])
	if err1 != nil || err2 != nil {
		return false
	}
	m := hmac.New(sha1.New, salt)
	m.Write([]byte(host))
	return hmac.Equal(m.Sum(nil), want)
}

// globMatch matches OpenSSH host patterns: '*' any run, '?' one character.
func globMatch(pattern, s string) bool {
	px, sx := 0, 0
	star, mark := -1, 0
	for sx < len(s) {
		switch {
		case px < len(pattern) && (pattern[px] == '?' || pattern[px] == s[sx]):
			px++
			sx++
		case px < len(pattern) && pattern[px] == '*':
			star, mark = px, sx
			px++
		case star >= 0:
			px = star + 1
			mark++
			sx = mark
		default:
			return false
		}
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}

// explain turns a knownhosts error into one of our sentinels with a message
// that says what to do.
func (h *HostKeys) explain(addr string, key ssh.PublicKey, err error) error {
	norm := knownhosts.Normalize(addr)
	var kerr *knownhosts.KeyError
	var rerr *knownhosts.RevokedError
	switch {
	case errors.As(err, &kerr) && len(kerr.Want) > 0:
		w := kerr.Want[0]
		return NonRetryable(fmt.Errorf("%w: host key for %s changed (%s line %d has %s %s, server offered %s %s): "+
			"if the machine was reinstalled, remove the old line with `ssh-keygen -R '%s' -f %s`; "+
			"otherwise this may be an attack",
			ErrHostKeyMismatch, addr, w.Filename, w.Line, w.Key.Type(), ssh.FingerprintSHA256(w.Key),
			key.Type(), ssh.FingerprintSHA256(key), norm, h.path))
	case errors.As(err, &kerr):
		host, port, _ := net.SplitHostPort(addr)
		return NonRetryable(fmt.Errorf("%w: %s (%s %s) is not in %s: check the fingerprint on the machine "+
			"(ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub), then add it with `ssh-keyscan -p %s %s >> %s`, "+
			"or enable trust-on-first-use",
			ErrHostKeyUnknown, addr, key.Type(), ssh.FingerprintSHA256(key), h.path,
			keyFileStem(key.Type()), port, host, h.path))
	case errors.As(err, &rerr):
		return NonRetryable(fmt.Errorf("%w: host key %s for %s is revoked in %s line %d",
			ErrHostKeyMismatch, ssh.FingerprintSHA256(key), addr, rerr.Revoked.Filename, rerr.Revoked.Line))
	default:
		return NonRetryable(fmt.Errorf("sshx: verify host key of %s: %w", addr, err))
	}
}

func keyFileStem(keyType string) string {
	switch keyType {
	case ssh.KeyAlgoED25519:
		return "ed25519"
	case ssh.KeyAlgoRSA:
		return "rsa"
	default:
		return "ecdsa"
	}
}

// trust records key for addr, unless (re-checked under the lock) the file
// gained a key for addr meanwhile: then that key decides.
func (h *HostKeys) trust(addr string, remote net.Addr, key ssh.PublicKey) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(h.path), 0o700); err != nil {
		return NonRetryable(fmt.Errorf("sshx: create known_hosts directory: %w", err))
	}
	f, err := os.OpenFile(h.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return NonRetryable(fmt.Errorf("sshx: open known_hosts: %w", err))
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return NonRetryable(fmt.Errorf("sshx: lock known_hosts: %w", err))
	}
	defer func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }()

	cb, err := h.load()
	if err != nil {
		return err
	}
	err = cb(addr, remote, key)
	var kerr *knownhosts.KeyError
	if err == nil {
		return nil
	}
	if !errors.As(err, &kerr) || len(kerr.Want) > 0 {
		return h.explain(addr, key, err)
	}
	if err := h.recordedElsewhere(addr, key); err != nil {
		return err
	}
	line := knownhosts.Line([]string{addr}, key) + "\n"
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			line = "\n" + line
		}
	}
	if _, err := io.WriteString(f, line); err != nil {
		return NonRetryable(fmt.Errorf("sshx: append to known_hosts: %w", err))
	}
	if err := f.Sync(); err != nil {
		return NonRetryable(fmt.Errorf("sshx: sync known_hosts: %w", err))
	}
	return nil
}

// Algorithms returns the host key algorithms for the handshake with addr:
// first those of the keys recorded for its host (any pattern or port, in
// file order), then every other supported one; nil when none is recorded.
// Preferring the known types makes a server with several host keys present
// the one we know; keeping the others lets a server whose key type changed
// present its new key, so that the refusal names both fingerprints and the
// file and line, instead of failing the handshake with no common algorithm.
func (h *HostKeys) Algorithms(addr string) []string {
	rec, err := h.recorded(addr)
	if err != nil || len(rec) == 0 {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	add := func(a ...string) {
		for _, x := range a {
			if !seen[x] {
				seen[x] = true
				algos = append(algos, x)
			}
		}
	}
	for _, k := range rec {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			add(t)
		}
	}
	add(ssh.SupportedAlgorithms().HostKeys...)
	return algos
}
