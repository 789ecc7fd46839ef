package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDecodeFailure: a failure record decodes strictly or fails with a
// *CorruptStateError or *VersionError; what decodes re-encodes to a record
// that decodes to the same bytes again.
func FuzzDecodeFailure(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzDecodeFailure.
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := DecodeFailure("fuzz", data)
		if err != nil {
			assertStateError(t, err)
			return
		}
		out, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeFailure("fuzz", out)
		if err != nil {
			t.Fatalf("re-encoded record %s does not decode: %v", out, err)
		}
		if out2, _ := json.Marshal(again); !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the record:\n%s\n%s", out, out2)
		}
	})
}

// assertStateError fails unless err is a *CorruptStateError or a
// *VersionError.
func assertStateError(t *testing.T, err error) {
	t.Helper()
	var ce *CorruptStateError
	var ve *VersionError
	if !errors.As(err, &ce) && !errors.As(err, &ve) {
		t.Fatalf("untyped error %T: %v", err, err)
	}
}
