package api

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/raydeploy/sdk/checkpoint"
)

// Role is what a token may do. Each role includes the ones before it:
// viewer < operator < approver < admin.
type Role string

// The roles, least to most.
const (
	// RoleViewer reads status, executions, approvals, events, the audit log and metrics.
	RoleViewer Role = "viewer"
	// RoleOperator also plans, starts, cancels and resumes executions.
	RoleOperator Role = "operator"
	// RoleApprover also approves and rejects pending approval requests.
	RoleApprover Role = "approver"
	// RoleAdmin may do everything (today: what an approver may; reserved for administration).
	RoleAdmin Role = "admin"
)

func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleApprover:
		return 3
	case RoleAdmin:
		return 4
	}
	return 0
}

// Allows reports whether r includes the rights of want.
func (r Role) Allows(want Role) bool { return r.rank() > 0 && r.rank() >= want.rank() }

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if r.rank() == 0 {
		return "", fmt.Errorf("role %q: want viewer, operator, approver or admin", s)
	}
	return r, nil
}

// TokenPrefix starts every token this package creates.
const TokenPrefix = "rdt_"

// TokenEntry is one token in a tokens file: only its SHA-256 is kept.
type TokenEntry struct {
	// Name is the token owner's name, the Principal's name (letters, digits,
	// . _ @ -; at most 64).
	Name string `json:"name"`
	// Role is what the token may do.
	Role Role `json:"role"`
	// Hash (sha256) is the hex SHA-256 of the token; the token itself is not
	// kept.
	Hash string `json:"sha256"`
	// CreatedAt is when the token was created, UTC, to the second.
	CreatedAt time.Time `json:"created_at"`
}

type tokensFile struct {
	Version int          `json:"version"`
	Tokens  []TokenEntry `json:"tokens"`
}

// Principal is an authenticated caller.
type Principal struct {
	// Name (principal) is the token's name (TokenEntry.Name).
	Name string `json:"principal"`
	// Role is the token's role.
	Role Role `json:"role"`
}

// Tokens is a set of bearer tokens loaded from a tokens file. It is safe for
// concurrent use.
type Tokens struct {
	mu     sync.RWMutex
	byHash map[string]TokenEntry
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

func hashToken(tok string) string {
	s := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(s[:])
}

// LoadTokens reads a tokens file. The file must not be readable or writable
// by group or others (mode 0600 or stricter); unknown keys are refused.
func LoadTokens(path string) (*Tokens, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("tokens file %s: mode %04o lets others read it; chmod 600 it", filepath.Base(path), st.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	f, err := decodeTokensFile(data)
	if err != nil {
		return nil, fmt.Errorf("tokens file %s: %w", filepath.Base(path), err)
	}
	t := &Tokens{byHash: map[string]TokenEntry{}}
	for _, e := range f.Tokens {
		t.byHash[e.Hash] = e
	}
	return t, nil
}

func decodeTokensFile(data []byte) (*tokensFile, error) {
	var f tokensFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after the tokens object")
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("version %d, want 1", f.Version)
	}
	seen := map[string]bool{}
	for i, e := range f.Tokens {
		switch {
		case !nameRE.MatchString(e.Name):
			return nil, fmt.Errorf("tokens[%d].name %q: want letters, digits, . _ @ - (at most 64)", i, e.Name)
		case e.Role.rank() == 0:
			return nil, fmt.Errorf("tokens[%d].role %q: want viewer, operator, approver or admin", i, e.Role)
		case len(e.Hash) != 64 || strings.Trim(e.Hash, "0123456789abcdef") != "":
			return nil, fmt.Errorf("tokens[%d].sha256: want 64 lower-case hex digits", i)
		case seen[e.Name]:
			return nil, fmt.Errorf("tokens[%d].name %q: duplicate", i, e.Name)
		}
		seen[e.Name] = true
	}
	return &f, nil
}

// NewTokens returns a token set from entries (for embedders that keep tokens elsewhere).
func NewTokens(entries ...TokenEntry) *Tokens {
	t := &Tokens{byHash: map[string]TokenEntry{}}
	for _, e := range entries {
		t.byHash[e.Hash] = e
	}
	return t
}

// Authenticate returns the principal of a bearer token, or false.
func (t *Tokens) Authenticate(token string) (Principal, bool) {
	if t == nil || !strings.HasPrefix(token, TokenPrefix) {
		return Principal{}, false
	}
	h := hashToken(token)
	t.mu.RLock()
	e, ok := t.byHash[h]
	t.mu.RUnlock()
	if !ok {
		return Principal{}, false
	}
	return Principal{Name: e.Name, Role: e.Role}, true
}

// CreateToken adds a token for name with role to the tokens file at path
// (created 0600 if missing; written atomically) and returns the token. Only
// its hash is stored: the returned value is the one time it can be seen.
// An existing token of the same name is replaced.
func CreateToken(path, name string, role Role) (string, error) {
	if !nameRE.MatchString(name) {
		return "", fmt.Errorf("token name %q: want letters, digits, . _ @ - (at most 64)", name)
	}
	if role.rank() == 0 {
		return "", fmt.Errorf("role %q: want viewer, operator, approver or admin", role)
	}
	f := &tokensFile{Version: 1}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", fmt.Errorf("tokens file: %w", err)
	default:
		if f, err = decodeTokensFile(data); err != nil {
			return "", fmt.Errorf("tokens file %s: %w", filepath.Base(path), err)
		}
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("new token: %w", err)
	}
	tok := TokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	kept := f.Tokens[:0]
	for _, e := range f.Tokens {
		if e.Name != name {
			kept = append(kept, e)
		}
	}
	f.Tokens = append(kept, TokenEntry{Name: name, Role: role, Hash: hashToken(tok), CreatedAt: time.Now().UTC().Truncate(time.Second)})
	out, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return "", err
	}
	if err := checkpoint.WriteFileAtomic(path, append(out, '\n'), 0o600); err != nil {
		return "", fmt.Errorf("tokens file: %w", err)
	}
	return tok, nil
}
