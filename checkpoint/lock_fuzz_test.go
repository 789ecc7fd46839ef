package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzDecodeLock: a lock file decodes strictly or fails with a
// *CorruptStateError naming the file; what decodes has a token, a pid and
// both times, and re-encodes (as the lock writes it) to a record that
// decodes to the same bytes again.
func FuzzDecodeLock(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzDecodeLock.
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := decodeLock("lock.json", data)
		if err != nil {
			var ce *CorruptStateError
			if !errors.As(err, &ce) || ce.Path != "lock.json" {
				t.Fatalf("error %T %v: want a *CorruptStateError naming lock.json", err, err)
			}
			return
		}
		if info.Token == "" || info.PID <= 0 || info.Since.IsZero() || info.Heartbeat.IsZero() {
			t.Fatalf("decoded an incomplete lock: %+v", info)
		}
		out, err := json.Marshal(info)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeLock("lock.json", out)
		if err != nil {
			t.Fatalf("re-encoded lock %s does not decode: %v", out, err)
		}
		if out2, _ := json.Marshal(again); !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the lock:\n%s\n%s", out, out2)
		}
	})
}

// TestDecodeLockStrict: the problems a hand-edited or damaged lock file
// shows are refused, each with its reason.
func TestDecodeLockStrict(t *testing.T) {
	const good = `{"host":"h","pid":7,"owner":"o","token":"t","since":"2026-12-02T01:00:00Z","heartbeat":"2026-12-02T01:00:10Z"}`
	if _, err := decodeLock("lock.json", []byte(good)); err != nil {
		t.Fatalf("a well-formed lock: %v", err)
	}
	for in, want := range map[string]string{
		strings.Replace(good, `"token":"t"`, `"token":"t","token":"u"`, 1):  `repeated key "token"`,
		strings.Replace(good, `"pid":7`, `"pid":null`, 1):                   `key "pid" is null`,
		strings.Replace(good, `"owner"`, `"ownr"`, 1):                       `unknown field "ownr"`,
		strings.Replace(good, `"pid":7`, `"pid":"7"`, 1):                    "cannot unmarshal string",
		strings.Replace(good, `"pid":7`, `"pid":0`, 1):                      "pid 0 is not a process id",
		strings.Replace(good, `,"token":"t"`, ``, 1):                        "no token",
		strings.Replace(good, `,"heartbeat":"2026-12-02T01:00:10Z"`, ``, 1): "no heartbeat time",
		good + "}":  "trailing data",
		`["t"]`:     "want a JSON object",
		``:          "EOF",
		`{"pid":7,`: "EOF",
	} {
		_, err := decodeLock("lock.json", []byte(in))
		var ce *CorruptStateError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "lock.json") {
			t.Errorf("decodeLock(%s) = %v; want a *CorruptStateError naming lock.json and saying %q", in, err, want)
		}
	}
}
