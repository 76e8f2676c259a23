package main

import (
	"strings"
	"testing"
)

// FuzzEtcdSettings: the parsers of ETCD_ENDPOINTS entries, ETCD_PREFIX and migrate's --from/--to
// never panic; an accepted endpoint carries no credentials and nothing but scheme://host:port; an
// accepted prefix starts and ends with a slash and holds no space or control character; an error
// never repeats a password-like part of the input.
func FuzzEtcdSettings(f *testing.F) {
	for _, s := range []string{"https://etcd-a:2379", "etcd-a:2379", "http://u:pw@h:1", "https://[::1]:2379", "h", "://", "https://h:2379/x?y#z",
		"/failover-bot/", "/", "//x/", "/a b/", "bbolt:/data/x.db", "etcd", "bbolt:", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if scheme, err := checkEtcdEndpoint(s); err == nil {
			if strings.Contains(s, "@") || strings.ContainsAny(s, "?#") {
				t.Fatalf("accepted endpoint %q carries credentials or more than scheme://host:port", s)
			}
			if scheme != "" && scheme != "http" && scheme != "https" {
				t.Fatalf("accepted endpoint %q with scheme %q", s, scheme)
			}
		} else if strings.Contains(s, "@") && strings.Contains(err.Error(), s) {
			t.Fatalf("the error repeats an endpoint with credentials: %v", err)
		}
		p := s
		if !strings.HasSuffix(p, "/") {
			p += "/"
		}
		if err := checkEtcdPrefix(p); err == nil {
			if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, " \t\n\x00") || p == "/" {
				t.Fatalf("accepted prefix %q", p)
			}
		}
		end, err := parseMigrateEnd("from", s)
		if err == nil && end.String() != "etcd" && !strings.HasPrefix(end.String(), "bbolt:") {
			t.Fatalf("--from %q parsed as %q", s, end.String())
		}
	})
}
