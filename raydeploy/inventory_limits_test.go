package raydeploy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHostRanges(t *testing.T) {
	tests := []struct {
		pattern string
		want    []string
	}{
		{"n[1:3]", []string{"n1", "n2", "n3"}},
		{"n[:2].lab", []string{"n0.lab", "n1.lab", "n2.lab"}},
		{"n[08:10]", []string{"n08", "n09", "n10"}},
		{"n[001:010:4]", []string{"n001", "n005", "n009"}},
		{"[a:c]-x", []string{"a-x", "b-x", "c-x"}},
		{"n[x:z:2]", []string{"nx", "nz"}},
		{"n[9223372036854775806:9223372036854775807]", []string{"n9223372036854775806", "n9223372036854775807"}},
		{"n[9223372036854775807:9223372036854775807]", []string{"n9223372036854775807"}},
		{"n[0:9223372036854775807:4611686018427387904]", []string{"n0", "n4611686018427387904"}},
	}
	for _, tt := range tests {
		hp, err := parseHostPattern(tt.pattern)
		if err != nil {
			t.Errorf("%s: %v", tt.pattern, err)
			continue
		}
		if diff := cmp.Diff(tt.want, hp.expand()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.pattern, diff)
		}
	}
	bad := map[string]string{
		"n[3:1]":                      "must be ascending",
		"n[c:a]":                      "must be ascending",
		"n[1:9223372036854775808]":    "range bound past 9223372036854775807",
		"n[-1:3]":                     "numbers or single letters",
		"n[+1:3]":                     "numbers or single letters",
		"n[01:100]":                   "same width",
		"n[1:3:0]":                    "step must be a positive integer",
		"n[1:3:99999999999999999999]": "step must be a positive integer",
		"n[1:2][3:4]":                 "only one range",
		"n[1:2":                       "unclosed",
		"n[1]":                        "[start:end]",
	}
	for p, want := range bad {
		if _, err := parseHostPattern(p); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one saying %q", p, err, want)
		}
	}
	// The whole int64 range counts without overflow (and is never expanded:
	// the cap refuses it first).
	hp, err := parseHostPattern("n[0:9223372036854775807]")
	if err != nil || hp.count() != 1<<63 {
		t.Errorf("count of [0:MaxInt64] = %d, %v; want 2^63", hp.count(), err)
	}
}

func TestInventoryHostCap(t *testing.T) {
	// The probe that expanded to 409,600 hosts (442 MiB): a 1.2 KB file of
	// 100 lines of 4,096 hosts each. Refused at the third of them, before
	// its hosts exist, naming the file, line and pattern.
	var b strings.Builder
	b.WriteString("[head_nodes]\nh1\n[worker_nodes]\n")
	for i := range 100 {
		fmt.Fprintf(&b, "w%02d[1:4096]\n", i)
	}
	in := b.String()
	if len(in) > 1500 {
		t.Fatalf("probe is %d bytes", len(in))
	}
	_, _, err := ParseInventory("big.ini", []byte(in), InventoryOptions{})
	got := problemStrings(t, err)
	want := []string{`big.ini:6: host pattern "w02[1:4096]": expands to 4096 hosts, past the inventory's cap of 10000 host entries (8193 listed before this line; InventoryOptions.MaxHosts raises it)`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}

	// The int64 limit: refused at once, not expanded.
	_, _, err = ParseInventory("max.ini", []byte("[head_nodes]\nh[0:9223372036854775807]\n"), InventoryOptions{})
	want = []string{`max.ini:2: host pattern "h[0:9223372036854775807]": expands to 9223372036854775808 hosts, past the inventory's cap of 10000 host entries (0 listed before this line; InventoryOptions.MaxHosts raises it)`}
	if diff := cmp.Diff(want, problemStrings(t, err)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}

	// The cap is settable, both ways.
	small := "[head_nodes]\nh1\n[worker_nodes]\nw[1:5]\n"
	if _, _, err := ParseInventory("s.ini", []byte(small), InventoryOptions{MaxHosts: 5}); err == nil {
		t.Error("6 hosts accepted with MaxHosts 5")
	}
	c, _, err := ParseInventory("s.ini", []byte(small), InventoryOptions{MaxHosts: 6})
	if err != nil || len(c.Workers) != 5 {
		t.Errorf("6 hosts with MaxHosts 6: %v", err)
	}
	big := "[head_nodes]\nh1\n[worker_nodes]\nw[1:20000]\n"
	c, _, err = ParseInventory("b.ini", []byte(big), InventoryOptions{MaxHosts: 20001})
	if err != nil || len(c.Workers) != 20000 {
		t.Errorf("20,001 hosts with MaxHosts 20001: %v", err)
	}
}

func TestInventoryProblemsAreBounded(t *testing.T) {
	in := "[head_nodes]\nh1\n" + strings.Repeat("[x:vars]\nnot a var\n", 1000)
	_, _, err := ParseInventory("many.ini", []byte(in), InventoryOptions{})
	got := problemStrings(t, err)
	if len(got) != maxProblems+1 || got[len(got)-1] != "many.ini: 800 more problems not shown" {
		t.Errorf("%d problems, last %q; want %d and a count of the rest", len(got), got[len(got)-1], maxProblems+1)
	}
}

// groupChain is an inventory whose head sits at the bottom of n nested
// groups: [g0:children] g1, [g1:children] g2, ... with a variable per
// group, the deepest winning.
func groupChain(n int) []byte {
	var b strings.Builder
	b.WriteString("[head_nodes:children]\ng0\n[worker_nodes]\nw1\nw2\n")
	for i := range n - 1 {
		fmt.Fprintf(&b, "[g%d:children]\ng%d\n[g%d:vars]\nray_num_cpus=%d\n", i, i+1, i, i)
	}
	fmt.Fprintf(&b, "[g%d]\nhead\n[g%d:vars]\nray_num_cpus=%d\n", n-1, n-1, n-1)
	return []byte(b.String())
}

func TestGroupChain(t *testing.T) {
	const n = 10000
	c, _, err := ParseInventory("chain.ini", groupChain(n), InventoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Head.Name != "head" || c.Head.Resources.CPUs == nil || *c.Head.Resources.CPUs != n-1 {
		t.Errorf("head %+v, want the deepest group's ray_num_cpus=%d", c.Head, n-1)
	}
	// A cycle at the end of the chain is found and named.
	in := append(groupChain(n), fmt.Sprintf("[g%d:children]\ng0\n", n-1)...)
	_, _, err = ParseInventory("cycle.ini", in, InventoryOptions{})
	if got := problemStrings(t, err); len(got) != 1 || !strings.Contains(got[0], "children cycle") {
		t.Errorf("cycle: %v", got)
	}
}

// BenchmarkGroupChain resolves chains of 1,000 and 10,000 nested groups:
// linear resolution makes the second about ten times the first (the probe
// took over a minute for 10,000). Run with
// go test -run '^$' -bench BenchmarkGroupChain ./raydeploy
func BenchmarkGroupChain(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		data := groupChain(n)
		b.Run(fmt.Sprintf("groups=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, _, err := ParseInventory("chain.ini", data, InventoryOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
