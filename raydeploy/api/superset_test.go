package api_test

import (
	"slices"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/raydeploy/sdk/raydeploy/api"
)

// TestDocumentIsASupersetOfTheSeeds: every path and method of the seed's
// rest-api-spec.yaml (testdata, copied from the seed) is in the served
// document with its status codes, and every schema keeps the seed's
// properties, types and enum values.
func TestDocumentIsASupersetOfTheSeeds(t *testing.T) {
	seed, err := openapi3.NewLoader().LoadFromFile("testdata/seed-rest-api-spec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ours, err := openapi3.NewLoader().LoadFromData(api.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range seed.Paths.Map() {
		mine := ours.Paths.Value(path)
		if mine == nil {
			t.Errorf("path %s missing", path)
			continue
		}
		for method, op := range item.Operations() {
			myOp := mine.GetOperation(method)
			if myOp == nil {
				t.Errorf("%s %s missing", method, path)
				continue
			}
			for code := range op.Responses.Map() {
				if myOp.Responses.Value(code) == nil {
					t.Errorf("%s %s: status %s missing", method, path, code)
				}
			}
		}
	}
	for name, sref := range seed.Components.Schemas {
		mref := ours.Components.Schemas[name]
		if mref == nil {
			t.Errorf("schema %s missing", name)
			continue
		}
		compareSchema(t, name, sref.Value, mref.Value)
	}
}

func compareSchema(t *testing.T, where string, seed, mine *openapi3.Schema) {
	t.Helper()
	if seed.Type != nil && (mine.Type == nil || !slices.Equal(seed.Type.Slice(), mine.Type.Slice())) {
		t.Errorf("%s: type %v, seed %v", where, mine.Type, seed.Type)
	}
	for _, v := range seed.Enum {
		if !slices.Contains(mine.Enum, v) {
			t.Errorf("%s: enum lacks the seed's %v", where, v)
		}
	}
	if len(seed.Enum) > 0 && len(mine.Enum) != len(seed.Enum) {
		t.Errorf("%s: enum %v, seed %v (a seed client would not know the extra values)", where, mine.Enum, seed.Enum)
	}
	for _, r := range seed.Required {
		if !slices.Contains(mine.Required, r) {
			t.Errorf("%s: %s no longer required", where, r)
		}
	}
	for prop, sp := range seed.Properties {
		mp := mine.Properties[prop]
		if mp == nil {
			t.Errorf("%s.%s missing", where, prop)
			continue
		}
		if sp.Ref != "" || mp.Ref != "" {
			if sp.Ref != mp.Ref {
				t.Errorf("%s.%s: $ref %q, seed %q", where, prop, mp.Ref, sp.Ref)
			}
			continue
		}
		compareSchema(t, where+"."+prop, sp.Value, mp.Value)
	}
	if seed.Items != nil && mine.Items != nil {
		if seed.Items.Ref != "" {
			if seed.Items.Ref != mine.Items.Ref {
				t.Errorf("%s[]: $ref %q, seed %q", where, mine.Items.Ref, seed.Items.Ref)
			}
		} else {
			compareSchema(t, where+"[]", seed.Items.Value, mine.Items.Value)
		}
	}
	if ap := seed.AdditionalProperties.Schema; ap != nil {
		mp := mine.AdditionalProperties.Schema
		if mp == nil || mp.Ref != ap.Ref {
			t.Errorf("%s: additionalProperties differ from the seed's", where)
		}
	}
}
