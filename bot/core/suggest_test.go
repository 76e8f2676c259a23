package core

import (
	"strings"
	"testing"
)

func TestNearMisses(t *testing.T) {
	cases := []struct {
		q     string
		cands []string
		want  string
	}{
		{"lsit", subcommands, "list"},
		{"stauts", subcommands, "status"},
		{"stat", subcommands, "status"},
		{"vap", subcommands, "vapp"},
		{"fin-db1", []string{"fin-db01", "fin-db02", "web01"}, "fin-db01 fin-db02"},
		{"FIN-DB01", []string{"fin-db01"}, ""}, // an exact match ignoring case is no miss
		{"x", subcommands, ""},
		{"", subcommands, ""},
		{"zzzzzzzz", []string{"fin-db01"}, ""},
		{"web0", []string{"web01", "web02", "web03", "web04"}, "web01 web02 web03"}, // at most three
	}
	for _, tc := range cases {
		if got := strings.Join(nearMisses(tc.q, tc.cands), " "); got != tc.want {
			t.Errorf("nearMisses(%q) = %q, want %q", tc.q, got, tc.want)
		}
	}
	if d := editDistance("kitten", "sitting"); d != 3 {
		t.Errorf("editDistance(kitten, sitting) = %d, want 3", d)
	}
	if d := editDistance("lsit", "LIST"); d != 1 {
		t.Errorf("editDistance(lsit, LIST) = %d, want 1 (a swap, ignoring case)", d)
	}
}
