package console

import (
	"bytes"
	"testing"
)

func TestPlainKeepsTimesAndStripsEmoji(t *testing.T) {
	term := New(&bytes.Buffer{}, []User{{ID: "U0BOB0000", Name: "bob"}})
	cases := []struct{ in, want string }{
		{":white_check_mark: Approved by <@U0BOB0000> at 07:00 UTC", "Approved by @bob at 07:00 UTC"},
		{"newest replicated state before 2026-11-23 07:00:00 UTC", "newest replicated state before 2026-11-23 07:00:00 UTC"},
		{"*FO-1* in <#C123> — <https://x.example/p1|card> &lt;b&gt;", "FO-1 in #C123 — card <b>"},
	}
	for _, tc := range cases {
		if got := term.plain(tc.in); got != tc.want {
			t.Errorf("plain(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
