package plans

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestSeedFiles checks the bad seed files of FuzzParse fail as intended.
func TestSeedFiles(t *testing.T) {
	tests := map[string]string{
		"bad-unknown-key.yaml": `:5: unknown key "concurency" in group "databases" (known: name, concurrency, delay_after, targets); did you mean "concurrency"?`,
		"bad-duplicate.yaml":   `:10: replica cdp-web overlaps CDP-Web/web01 in group "databases" (line 7) of plan "site-b" (list web01 in except to leave it out); a target may appear once per plan`,
		"bad-alias.yaml":       `:7: YAML alias "*plan" is not allowed in a plans file (a guard against alias bombs); write the value out`,
		"bad-not-yaml.yaml":    `:4: not valid YAML: did not find expected node content`,
		"bad-kinds.yaml":       `:4: groups of plan "site-b" must be a list of groups, got a map`,
		"bad-values.yaml":      `:7: delay_after "2 minutes" is not a duration (write e.g. 90s, 2m, 1h30m)`,
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", name)
			_, err := Load(path)
			if err == nil || err.Error() != path+want {
				t.Fatalf("Load(%s) = %v\nwant %s", path, err, path+want)
			}
		})
	}
}

var (
	errFormat = regexp.MustCompile(`^plans\.yaml(:[0-9]+)?: [^ ]`)
	nameRE    = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seed files: %v", err)
	}
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"plans:\n",
		"plans:\n  p:\n    groups: [{name: g, targets: [{replica: R, except: [a]}, {replica: r, vms: [A]}]}]\n",
		"plans:\n  p:\n    groups: [{name: g, targets: [{vapp: \"a\\u2028b\"}]}]\n",
		"a: &a [*a]\n",
		"plans: {p: {groups: [{name: g, concurrency: 0x10, delay_after: 1e3s, targets: [{vapps: [~, null]}]}]}}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("plans.yaml", data)
		if err != nil {
			msg := err.Error()
			if strings.ContainsAny(msg, "\n\r") {
				t.Fatalf("error is not one line: %q", msg)
			}
			if !errFormat.MatchString(msg) {
				t.Fatalf("error does not start with the path and line: %q", msg)
			}
			if file != nil {
				t.Fatalf("error %q with a file", msg)
			}
			return
		}
		checkInvariants(t, file)
	})
}

// checkInvariants checks what Parse promises of a file it accepts, without
// using the parser's own helpers.
func checkInvariants(t *testing.T, f *File) {
	t.Helper()
	if f.Path != "plans.yaml" || len(f.Plans) == 0 {
		t.Fatalf("file %q with %d plans", f.Path, len(f.Plans))
	}
	for i, p := range f.Plans {
		if !nameRE.MatchString(p.Name) || p.Line < 1 {
			t.Fatalf("plan %q at line %d", p.Name, p.Line)
		}
		for _, q := range f.Plans[:i] {
			if strings.EqualFold(p.Name, q.Name) {
				t.Fatalf("plans %q and %q", q.Name, p.Name)
			}
		}
		if got, ok := f.Plan(strings.ToUpper(p.Name)); !ok || got.Name != p.Name {
			t.Fatalf("Plan(%q) = %v, %v", strings.ToUpper(p.Name), got, ok)
		}
		if p.Restore != "latest" && p.Restore != "latest-vss" {
			t.Fatalf("plan %q restore %q", p.Name, p.Restore)
		}
		if strings.ContainsAny(p.Description, "\n\r") {
			t.Fatalf("plan %q description %q", p.Name, p.Description)
		}
		groups, targets := p.Size()
		if groups < 1 || groups > 50 || targets > 500 {
			t.Fatalf("plan %q: %d groups, %d targets", p.Name, groups, targets)
		}
		var all []Target
		for j, g := range p.Groups {
			if !nameRE.MatchString(g.Name) || g.Line < 1 {
				t.Fatalf("group %q at line %d", g.Name, g.Line)
			}
			for _, h := range p.Groups[:j] {
				if strings.EqualFold(g.Name, h.Name) {
					t.Fatalf("groups %q and %q in plan %q", h.Name, g.Name, p.Name)
				}
			}
			if len(g.Targets) == 0 || g.Concurrency < 0 || g.Delay < 0 || g.Delay > 24*time.Hour {
				t.Fatalf("group %q: %d targets, concurrency %d, delay %v", g.Name, len(g.Targets), g.Concurrency, g.Delay)
			}
			for _, tg := range g.Targets {
				checkTarget(t, tg)
			}
			all = append(all, g.Targets...)
		}
		checkNoDuplicates(t, p.Name, all)
	}
	if lines := strings.Split(f.Summary(), "\n"); len(lines) != len(f.Plans) {
		t.Fatalf("Summary has %d lines for %d plans", len(lines), len(f.Plans))
	}
}

func checkTarget(t *testing.T, tg Target) {
	t.Helper()
	if tg.Line < 1 || (tg.Replica != "") == (len(tg.VApps) > 0) {
		t.Fatalf("target %#v", tg)
	}
	if tg.Replica == "" && (tg.VMs != nil || tg.Except != nil) || tg.VMs != nil && tg.Except != nil {
		t.Fatalf("target %#v", tg)
	}
	if tg.VMs != nil && len(tg.VMs) == 0 || tg.Except != nil && len(tg.Except) == 0 {
		t.Fatalf("target %#v has an empty list", tg)
	}
	names := append(append(append([]string{tg.Replica}, tg.VMs...), tg.Except...), tg.VApps...)
	for i, n := range names {
		if i > 0 || tg.Replica != "" {
			if n == "" || strings.TrimSpace(n) != n || strings.ContainsAny(n, "\n\r\x00") {
				t.Fatalf("target %#v has name %q", tg, n)
			}
		}
	}
	for i, a := range tg.Except {
		for _, b := range tg.Except[:i] {
			if strings.EqualFold(a, b) {
				t.Fatalf("target %#v excepts %q twice", tg, a)
			}
		}
	}
	if s := tg.String(); s == "" || strings.ContainsAny(s, "\n\r") {
		t.Fatalf("target %#v String %q", tg, s)
	}
}

// checkNoDuplicates checks no VM or vApp is taken twice in a plan: each vApp
// once; per replica, VMs once, and a whole-replica entry alone, or with the
// VMs of its except list.
func checkNoDuplicates(t *testing.T, plan string, all []Target) {
	t.Helper()
	in := func(list []string, s string) bool {
		for _, x := range list {
			if strings.EqualFold(x, s) {
				return true
			}
		}
		return false
	}
	var vapps []string
	for i, a := range all {
		for _, v := range a.VApps {
			if in(vapps, v) {
				t.Fatalf("plan %q takes vApp %q twice", plan, v)
			}
			vapps = append(vapps, v)
		}
		if a.Replica == "" {
			continue
		}
		for j, b := range all {
			if j == i || !strings.EqualFold(a.Replica, b.Replica) {
				continue
			}
			if a.VMs == nil { // a takes the replica minus a.Except
				if b.VMs == nil {
					t.Fatalf("plan %q takes replica %q whole twice", plan, a.Replica)
				}
				for _, vm := range b.VMs {
					if !in(a.Except, vm) {
						t.Fatalf("plan %q takes %q/%q twice", plan, a.Replica, vm)
					}
				}
			} else if b.VMs != nil && j < i {
				for _, vm := range a.VMs {
					if in(b.VMs, vm) {
						t.Fatalf("plan %q takes %q/%q twice", plan, a.Replica, vm)
					}
				}
			}
		}
		for k, vm := range a.VMs {
			if in(a.VMs[:k], vm) {
				t.Fatalf("plan %q takes %q/%q twice", plan, a.Replica, vm)
			}
		}
	}
}
