package raydeploy

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// redacted is what every rendering of a non-empty Secret shows.
const redacted = "[redacted]"

// Secret is a plaintext secret that never shows itself: String, GoString,
// Format, LogValue, MarshalJSON, MarshalText and MarshalYAML all render
// "[redacted]" (or "" when empty). The value sits behind a pointer, so
// even fmt's reflection fallback (a bad verb on an enclosing value) prints
// an address, not the secret. Reveal returns the value.
type Secret struct {
	v *string
}

// NewSecret wraps a plaintext value; an empty value is an unset Secret.
func NewSecret(v string) Secret {
	if v == "" {
		return Secret{}
	}
	return Secret{v: &v}
}

// Reveal returns the secret's value, for the one place that needs it.
func (s Secret) Reveal() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

// IsSet reports whether the secret holds a value.
func (s Secret) IsSet() bool { return s.v != nil && *s.v != "" }

// IsZero reports whether the secret is unset (for omitempty / omitzero).
func (s Secret) IsZero() bool { return !s.IsSet() }

// Equal compares the values (used by go-cmp).
func (s Secret) Equal(o Secret) bool { return s.Reveal() == o.Reveal() }

func (s Secret) shown() string {
	if !s.IsSet() {
		return ""
	}
	return redacted
}

// String returns "[redacted]" for a set secret.
func (s Secret) String() string { return s.shown() }

// GoString returns "[redacted]" quoted, for a set secret (the %#v verb).
func (s Secret) GoString() string { return strconv.Quote(s.shown()) }

// Format renders "[redacted]" for every verb, so no fmt verb prints the value.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' || (verb == 'v' && f.Flag('#')) {
		_, _ = fmt.Fprint(f, strconv.Quote(s.shown()))
		return
	}
	_, _ = fmt.Fprint(f, s.shown())
}

// LogValue makes slog print "[redacted]".
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.shown()) }

// MarshalJSON renders "[redacted]".
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.shown())), nil }

// UnmarshalJSON reads a plaintext string.
func (s *Secret) UnmarshalJSON(b []byte) error {
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("secret: want a string: %w", err)
	}
	*s = NewSecret(v)
	return nil
}

// MarshalText renders "[redacted]".
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.shown()), nil }

// MarshalYAML renders "[redacted]".
func (s Secret) MarshalYAML() (any, error) { return s.shown(), nil }

// UnmarshalYAML reads a plaintext string.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: cannot unmarshal %s into a string", n.Line, kindName(n.Kind))}}
	}
	*s = NewSecret(n.Value)
	return nil
}
