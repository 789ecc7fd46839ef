package raydeploy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.yaml.in/yaml/v3"
)

// FuzzParseYAML: any cluster file, with a secret key's line put anywhere
// (indented like its neighbour, its value in one of many shapes), either
// fails with a *ValidationError that never shows the secret, or yields a
// Cluster that re-encodes to YAML which parses back to the same Cluster
// (secrets then read "[redacted]": they never leave in clear), and whose
// Validate, WithDefaults and marshalling never panic.
func FuzzParseYAML(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzParseYAML (the example cluster file, flow
	// and block styles, anchors, aliases, wrong types, repeated keys).
	keys := []string{"password", "sudo_password", "key_passphrase", "token"}
	f.Fuzz(func(t *testing.T, data []byte, at uint16, shape uint8) {
		if holdsMarker(data) {
			t.Skip()
		}
		val := strings.ReplaceAll(yamlSecretValues[int(shape)%len(yamlSecretValues)], "SECRET", fuzzMarker)
		lines := strings.Split(string(data), "\n")
		indent := ""
		if i := int(at) % (len(lines) + 1); i < len(lines) {
			l := lines[i]
			indent = l[:len(l)-len(strings.TrimLeft(l, " "))]
		}
		line := indent + keys[int(shape/16)%len(keys)] + ": " + val
		for _, in := range [][]byte{data, insertLine(data, at, line)} {
			c, err := ParseYAML(in)
			checkLoaderResult(t, map[string]int{"": countLines(in)}, c, nil, err)
			if err != nil {
				continue
			}
			roundTrip(t, c)
			if err := c.Validate(); err != nil {
				if _, ok := err.(*ValidationError); !ok {
					t.Fatalf("validation error %T: %v", err, err)
				}
				continue
			}
			d := c.WithDefaults()
			if err := d.Validate(); err != nil {
				t.Fatalf("valid cluster invalid after defaults: %v", err)
			}
			if _, err := json.Marshal(d); err != nil {
				t.Fatalf("json.Marshal: %v", err)
			}
			_ = d.Nodes()
		}
	})
}

// roundTrip checks that c marshals to YAML that parses back to c, with each
// set secret read back as "[redacted]".
func roundTrip(t *testing.T, c *Cluster) {
	t.Helper()
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatalf("yaml.Marshal: %v", err)
	}
	back, err := ParseYAML(out)
	if err != nil {
		t.Fatalf("marshalled cluster does not parse: %v\n%s", err, out)
	}
	want := c.clone()
	redact := func(a *Auth) {
		for _, s := range []*Secret{&a.Password, &a.SudoPassword} {
			if s.IsSet() {
				*s = NewSecret(redacted)
			}
		}
	}
	eachAuth(want, redact)
	if diff := cmp.Diff(want, back, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("YAML round trip (-parsed +re-parsed):\n%s\n%s", diff, out)
	}
}
