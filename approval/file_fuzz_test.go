package approval

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// approvalKeys are the keys an approval file may have.
var approvalKeys = map[string]bool{"approved_at": true, "approved_by": true, "approved": true,
	"reason": true, "acknowledge_risks": true, "plan_digest": true}

// FuzzDecodeFileApproval: the approval file decoder fails closed. What it
// accepts is one JSON object (nothing after it) whose keys are all known,
// each present once (exact case), none null, each of its type, with
// approved_by set and approved_at an RFC 3339 time; encoding/json reads the
// same values from it; and the approval re-encoded decodes to the same
// approval. What it refuses gets a message.
func FuzzDecodeFileApproval(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzDecodeFileApproval (the seed's two-field
	// format, every key, misspelt keys, nulls, duplicates, wrong types,
	// trailing data).
	f.Fuzz(func(t *testing.T, data []byte) {
		fa, err := decodeFileApproval(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("refusal without a message")
			}
			return
		}
		// One object, nothing after it.
		dec := json.NewDecoder(bytes.NewReader(data))
		var raw map[string]json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Fatalf("accepted %q, which is not a JSON object: %v", data, err)
		}
		if dec.More() || dec.InputOffset() < int64(len(bytes.TrimRight(data, " \t\r\n"))) {
			t.Fatalf("accepted %q with data after the object", data)
		}
		// Known keys, exact case, each once, none null.
		keys := 0
		for k, v := range raw {
			if !approvalKeys[k] {
				t.Fatalf("accepted unknown key %q in %q", k, data)
			}
			if string(bytes.TrimSpace(v)) == "null" {
				t.Fatalf("accepted a null %q in %q", k, data)
			}
			keys++
		}
		if n := countTopKeys(t, data); n != keys {
			t.Fatalf("accepted %q: %d keys, %d distinct (a repeated key)", data, n, keys)
		}
		if fa.ApprovedBy == "" {
			t.Fatalf("accepted %q without approved_by", data)
		}
		if _, err := time.Parse(time.RFC3339, fa.ApprovedAt); err != nil {
			t.Fatalf("accepted approved_at %q", fa.ApprovedAt)
		}
		// encoding/json reads the same values.
		var std struct {
			ApprovedAt       string `json:"approved_at"`
			ApprovedBy       string `json:"approved_by"`
			Approved         *bool  `json:"approved"`
			Reason           string `json:"reason"`
			AcknowledgeRisks bool   `json:"acknowledge_risks"`
			PlanDigest       string `json:"plan_digest"`
		}
		if err := json.Unmarshal(data, &std); err != nil {
			t.Fatalf("accepted %q, encoding/json refuses it: %v", data, err)
		}
		if std.ApprovedAt != fa.ApprovedAt || std.ApprovedBy != fa.ApprovedBy || std.Reason != fa.Reason ||
			std.AcknowledgeRisks != fa.AcknowledgeRisks || std.PlanDigest != fa.PlanDigest ||
			(std.Approved == nil) != (fa.Approved == nil) || (std.Approved != nil && *std.Approved != *fa.Approved) {
			t.Fatalf("decoded %+v, encoding/json reads %+v", fa, std)
		}
		// Re-encoded, it decodes to the same approval.
		out, err := json.Marshal(std)
		if err != nil {
			t.Fatal(err)
		}
		if std.Approved == nil {
			out = bytes.Replace(out, []byte(`,"approved":null`), nil, 1)
		}
		again, err := decodeFileApproval(out)
		if err != nil {
			t.Fatalf("re-encoded %s refused: %v", out, err)
		}
		if again.ApprovedAt != fa.ApprovedAt || again.ApprovedBy != fa.ApprovedBy || again.Reason != fa.Reason ||
			again.AcknowledgeRisks != fa.AcknowledgeRisks || again.PlanDigest != fa.PlanDigest ||
			(again.Approved == nil) != (fa.Approved == nil) || (again.Approved != nil && *again.Approved != *fa.Approved) {
			t.Fatalf("round trip: %+v, then %+v", fa, again)
		}
	})
}

// countTopKeys counts the keys of the top-level object of data, repeats
// included.
func countTopKeys(t *testing.T, data []byte) int {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := k.(string); !ok {
			t.Fatalf("key %v", k)
		}
		n++
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	return n
}
