package plans

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// group1 is a plan "p" with one group "g" whose targets follow, from line 6.
func group1(targets string) string {
	return "plans:\n  p:\n    groups:\n      - name: g\n        targets:\n" + targets
}

// groups2 is a plan "p" with a group "a" whose targets start at line 6 and a
// group "b" right after them.
func groups2(a, b string) string {
	return "plans:\n  p:\n    groups:\n      - name: a\n        targets:\n" + a +
		"      - name: b\n        targets:\n" + b
}

func mustParse(t *testing.T, src string) *File {
	t.Helper()
	f, err := Parse("plans.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, src)
	}
	return f
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func goodFile() *File {
	return &File{
		Path: "plans.yaml",
		Plans: []Plan{
			{
				Name: "site-b", Description: "Fail over site B, databases first", Line: 3, Restore: "latest",
				Groups: []Group{
					{
						Name: "databases", Line: 7, Concurrency: 2, Delay: 2 * time.Minute,
						Targets: []Target{
							{Line: 11, Replica: "CDP-Finance"},
							{Line: 12, Replica: "CDP-Web", VMs: []string{"web-db01"}},
						},
					},
					{
						Name: "apps", Line: 14,
						Targets: []Target{
							{Line: 16, Replica: "CDP-Web", Except: []string{"web-db01"}, Optional: true},
							{Line: 19, VApps: []string{"Finance-App"}},
							{Line: 20, VApps: []string{"HR-App", "CRM-App"}, Optional: true},
						},
					},
				},
			},
		},
	}
}

func TestParseGood(t *testing.T) {
	got := mustParse(t, string(readTestdata(t, "good.yaml")))
	if want := goodFile(); !reflect.DeepEqual(got, want) {
		t.Fatalf("got\n%#v\nwant\n%#v", got, want)
	}
}

func TestParseGoodVariants(t *testing.T) {
	src := `plans:
  Site-A:
    restore: Latest-VSS
    description: >
      Two lines
      folded
    groups:
      - name: g.1_x
        concurrency: 10
        delay_after: 24h
        targets:
          - replica: R
            except: [a, b]
            criticality: Critical
          - replica: r
            vms: [A, B]
          - vapps: [Solo]
            criticality: OPTIONAL
      - name: g2
        delay_after: 0s
        targets:
          - {vapp: "V 1"}
  site-c:
    description: ~
    groups:
      - name: g
        targets:
          - replica: R
          - vapp: Solo
`
	want := &File{Path: "plans.yaml", Plans: []Plan{
		{Name: "Site-A", Description: "Two lines folded", Line: 2, Restore: "latest-vss", Groups: []Group{
			{Name: "g.1_x", Line: 8, Concurrency: 10, Delay: 24 * time.Hour, Targets: []Target{
				{Line: 12, Replica: "R", Except: []string{"a", "b"}},
				{Line: 15, Replica: "r", VMs: []string{"A", "B"}},
				{Line: 17, VApps: []string{"Solo"}, Optional: true},
			}},
			{Name: "g2", Line: 19, Targets: []Target{{Line: 22, VApps: []string{"V 1"}}}},
		}},
		{Name: "site-c", Line: 23, Restore: "latest", Groups: []Group{
			{Name: "g", Line: 26, Targets: []Target{{Line: 28, Replica: "R"}, {Line: 29, VApps: []string{"Solo"}}}},
		}},
	}}
	if got := mustParse(t, src); !reflect.DeepEqual(got, want) {
		t.Fatalf("got\n%#v\nwant\n%#v", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	var manyGroups, manyTargets strings.Builder
	manyGroups.WriteString("plans:\n  big:\n    groups:\n")
	for i := range 51 {
		fmt.Fprintf(&manyGroups, "      - name: g%d\n        targets: [{vapp: v%d}]\n", i, i) // group i at line 4+2i
	}
	manyTargets.WriteString("plans:\n  big:\n    groups:\n      - name: a\n        targets:\n")
	for i := range 300 {
		fmt.Fprintf(&manyTargets, "          - vapp: a%d\n", i) // lines 6..305
	}
	manyTargets.WriteString("      - name: b\n        targets:\n") // lines 306, 307
	for i := range 201 {
		fmt.Fprintf(&manyTargets, "          - vapp: b%d\n", i) // lines 308..508
	}

	tests := []struct {
		name, src, want string
	}{
		// Keys.
		{"unknown group key with suggestion", `plans:
  site-b:
    groups:
      - name: databases
        concurency: 2
        targets: [{replica: R}]
`, `plans.yaml:5: unknown key "concurency" in group "databases" (known: name, concurrency, delay_after, targets); did you mean "concurrency"?`},
		{"unknown group key without suggestion", group1("          - replica: R\n") + "        colour: red\n",
			`plans.yaml:7: unknown key "colour" in group "g" (known: name, concurrency, delay_after, targets)`},
		{"unknown top-level key", "plan:\n  p: {}\n",
			`plans.yaml:1: unknown top-level key "plan" (known: plans); did you mean "plans"?`},
		{"unknown plan key", "plans:\n  site-b:\n    group: []\n",
			`plans.yaml:3: unknown key "group" in plan "site-b" (known: description, restore, groups); did you mean "groups"?`},
		{"unknown target key", group1("          - replica: R\n            vm: [a]\n"),
			`plans.yaml:7: unknown key "vm" in target 1 of group "g" (known: replica, vms, except, vapp, vapps, criticality); did you mean "vms"?`},
		{"transposed key", group1("          - replica: R\n            ecxept: [a]\n"),
			`plans.yaml:7: unknown key "ecxept" in target 1 of group "g" (known: replica, vms, except, vapp, vapps, criticality); did you mean "except"?`},
		{"key twice", group1("          - replica: R\n            replica: S\n"),
			`plans.yaml:7: key "replica" appears twice in target 1 of group "g" (first at line 6)`},
		{"non-scalar key", "plans:\n  p:\n    ? [a]\n    : 1\n",
			`plans.yaml:3: keys in plan "p" must be single words, got a list`},

		// Emptiness.
		{"group has no targets", groups2("          - replica: R\n", ""),
			`plans.yaml:8: group "b" of plan "p" has no targets`},
		{"group with targets key but none", "plans:\n  p:\n    groups:\n      - name: g\n        targets: []\n",
			`plans.yaml:5: group "g" of plan "p" has no targets`},
		{"group without targets key", "plans:\n  p:\n    groups:\n      - name: g\n",
			`plans.yaml:4: group "g" of plan "p" has no targets`},
		{"plan has no groups", "plans:\n  a:\n    groups: [{name: g, targets: [{vapp: v}]}]\n  site-b:\n    description: nothing yet\n",
			`plans.yaml:4: plan "site-b" has no groups`},
		{"plan with empty groups", "plans:\n  site-b:\n    groups: []\n",
			`plans.yaml:3: plan "site-b" has no groups`},
		{"plan with no value", "plans:\n  site-b:\n",
			`plans.yaml:2: plan "site-b" has no groups`},
		{"empty file", "", `plans.yaml: no plans: the file is empty; it needs a "plans" map of plan names to plans`},
		{"comments only", "# nothing\n", `plans.yaml: no plans: the file is empty; it needs a "plans" map of plan names to plans`},
		{"no plans key", "other: 1\n", `plans.yaml:1: unknown top-level key "other" (known: plans)`},
		{"empty plans", "plans:\n", `plans.yaml:1: "plans" is empty; define at least one plan`},
		{"empty plans map", "plans: {}\n", `plans.yaml:1: "plans" is empty; define at least one plan`},

		// Duplicates.
		{"same VM in two groups", groups2("          - replica: CDP-Web\n            vms: [web01]\n", "          - replica: cdp-web\n            vms: [WEB02, Web01]\n"),
			`plans.yaml:11: cdp-web/Web01 is already in group "a" (line 7) of plan "p"; a target may appear once per plan`},
		{"same VM twice in one list", group1("          - replica: R\n            vms: [a, b, A]\n"),
			`plans.yaml:7: R/A is already in group "g" (line 7) of plan "p"; a target may appear once per plan`},
		{"same vApp twice", groups2("          - vapp: Finance-App\n", "          - vapps: [HR, finance-app]\n"),
			`plans.yaml:9: vApp finance-app is already in group "a" (line 6) of plan "p"; a target may appear once per plan`},
		{"whole replica twice", groups2("          - replica: R\n", "          - replica: r\n            except: [x]\n"),
			`plans.yaml:9: replica r is already in group "a" (line 6) of plan "p"; a target may appear once per plan`},
		{"VM after whole replica", groups2("          - replica: R\n", "          - replica: R\n            vms: [x]\n"),
			`plans.yaml:10: R/x is already in group "a" (line 6) of plan "p", taken by replica R; a target may appear once per plan`},
		{"VM outside except after replica minus except", groups2("          - replica: R\n            except: [x]\n", "          - replica: R\n            vms: [x, y]\n"),
			`plans.yaml:11: R/y is already in group "a" (line 6) of plan "p", taken by replica R except x; a target may appear once per plan`},
		{"whole replica after VM", groups2("          - replica: R\n            vms: [x]\n", "          - replica: R\n"),
			`plans.yaml:10: replica R overlaps R/x in group "a" (line 7) of plan "p" (list x in except to leave it out); a target may appear once per plan`},
		{"replica minus except after a VM not excepted", groups2("          - replica: R\n            vms: [x, y]\n", "          - replica: R\n            except: [X]\n"),
			`plans.yaml:10: replica R overlaps R/y in group "a" (line 7) of plan "p" (list y in except to leave it out); a target may appear once per plan`},
		{"except lists a VM twice", group1("          - replica: R\n            except: [a, A]\n"),
			`plans.yaml:7: VM A is listed twice in except of target 1 of group "g" (first at line 7)`},
		{"duplicate plan names", "plans:\n  site-b:\n    groups: [{name: g, targets: [{vapp: v}]}]\n  Site-B:\n    groups: []\n",
			`plans.yaml:4: plan "Site-B" is already defined at line 2 (plan names compare case-insensitively)`},
		{"duplicate group names", groups2("          - vapp: v\n", "          - vapp: w\n") + "      - name: A\n        targets: [{vapp: x}]\n",
			`plans.yaml:10: group "A" appears twice in plan "p" (first at line 4)`},

		// Values.
		{"delay not a duration", group1("          - vapp: v\n") + "        delay_after: 2 minutes\n",
			`plans.yaml:7: delay_after "2 minutes" is not a duration (write e.g. 90s, 2m, 1h30m)`},
		{"delay without unit", group1("          - vapp: v\n") + "        delay_after: 90\n",
			`plans.yaml:7: delay_after "90" is not a duration (write e.g. 90s, 2m, 1h30m)`},
		{"delay negative", group1("          - vapp: v\n") + "        delay_after: -1m\n",
			`plans.yaml:7: delay_after "-1m" is negative; write 0 or more (e.g. 90s, 2m)`},
		{"delay over 24h", group1("          - vapp: v\n") + "        delay_after: 24h1s\n",
			`plans.yaml:7: delay_after "24h1s" is more than 24h`},
		{"concurrency a word", group1("          - vapp: v\n") + "        concurrency: two\n",
			`plans.yaml:7: concurrency "two" of group "g" is not a positive integer`},
		{"concurrency negative", group1("          - vapp: v\n") + "        concurrency: -1\n",
			`plans.yaml:7: concurrency "-1" of group "g" is not a positive integer`},
		{"concurrency fraction", group1("          - vapp: v\n") + "        concurrency: 1.5\n",
			`plans.yaml:7: concurrency "1.5" of group "g" is not a positive integer`},
		{"concurrency zero", group1("          - vapp: v\n") + "        concurrency: 0\n",
			`plans.yaml:7: concurrency 0 of group "g" is not a positive integer; leave it out for the bot's default`},
		{"concurrency too big", group1("          - vapp: v\n") + "        concurrency: 99999999999999999999\n",
			`plans.yaml:7: concurrency "99999999999999999999" of group "g" is not a positive integer`},
		{"restore unknown", "plans:\n  p:\n    restore: newest\n",
			`plans.yaml:3: restore "newest" of plan "p" is not latest or latest-vss`},
		{"criticality unknown", group1("          - vapp: v\n            criticality: high\n"),
			`plans.yaml:7: criticality "high" of target 1 of group "g" is not critical or optional`},

		// Target shapes.
		{"target names nothing", group1("          - criticality: optional\n"),
			`plans.yaml:6: target 1 of group "g" names nothing: give one of replica, vapp or vapps`},
		{"target replica and vapp", group1("          - replica: R\n            vapp: V\n"),
			`plans.yaml:7: target 1 of group "g" has both replica and vapp; give only one of replica, vapp or vapps per entry`},
		{"target vapp and vapps", group1("          - vapps: [A]\n            vapp: V\n"),
			`plans.yaml:7: target 1 of group "g" has both vapps and vapp; give only one of replica, vapp or vapps per entry`},
		{"vms without replica", group1("          - vapp: V\n            vms: [a]\n"),
			`plans.yaml:7: vms without replica in target 1 of group "g": vms picks VMs of a replica`},
		{"except without replica", group1("          - vapps: [V]\n            except: [a]\n"),
			`plans.yaml:7: except without replica in target 1 of group "g": except leaves VMs of a replica out`},
		{"vms and except", group1("          - replica: R\n            vms: [a]\n            except: [b]\n"),
			`plans.yaml:8: target 1 of group "g" has both vms and except; use vms to pick VMs or except to leave some out, not both`},
		{"bare target", group1("          - CDP-Web\n"),
			`plans.yaml:6: target 1 of group "g" is a bare value "CDP-Web"; write "replica: CDP-Web" or "vapp: CDP-Web"`},

		// Names of targets.
		{"empty replica name", group1("          - replica: \"\"\n"),
			`plans.yaml:6: empty replica name in target 1 of group "g"`},
		{"replica name missing", group1("          - replica:\n            vms: [a]\n"),
			`plans.yaml:6: empty replica name in target 1 of group "g"`},
		{"empty VM name", group1("          - replica: R\n            vms: [a, '']\n"),
			`plans.yaml:7: empty VM name in vms of target 1 of group "g"`},
		{"empty vApp name", group1("          - vapps: [A, \"\"]\n"),
			`plans.yaml:6: empty vApp name in vapps of target 1 of group "g"`},
		{"null vApp name", group1("          - vapp: ~\n"),
			`plans.yaml:6: vApp name ~ in target 1 of group "g" is YAML's null; quote it if that is the name`},
		{"empty vms list", group1("          - replica: R\n            vms: []\n"),
			`plans.yaml:7: vms of target 1 of group "g" is empty; leave vms out to fail over the whole replica`},
		{"empty except list", group1("          - replica: R\n            except:\n"),
			`plans.yaml:7: except of target 1 of group "g" is empty; leave except out to fail over the whole replica`},
		{"empty vapps list", group1("          - vapps: []\n"),
			`plans.yaml:6: vapps of target 1 of group "g" is empty; list at least one vApp`},
		{"control character in a name", group1("          - replica: \"R\\n1\"\n"),
			`plans.yaml:6: replica name "R\n1" in target 1 of group "g" has a control character`},
		{"spaces around a name", group1("          - vapp: \" V\"\n"),
			`plans.yaml:6: vApp name " V" in target 1 of group "g" has leading or trailing spaces`},

		// Plan and group names.
		{"plan name empty", "plans:\n  \"\":\n    groups: []\n", `plans.yaml:2: a plan has an empty name`},
		{"plan name with a space", "plans:\n  site b:\n    groups: []\n",
			`plans.yaml:2: plan name "site b" is not valid: use only letters, digits, '.', '_' and '-' (no spaces)`},
		{"plan name with a slash", "plans:\n  site/b:\n    groups: []\n",
			`plans.yaml:2: plan name "site/b" is not valid: use only letters, digits, '.', '_' and '-' (no spaces)`},
		{"plan name too long", "plans:\n  " + strings.Repeat("a", 65) + ":\n    groups: []\n",
			`plans.yaml:2: plan name "` + strings.Repeat("a", 64) + `…" is longer than 64 characters`},
		{"group name with a space", "plans:\n  p:\n    groups:\n      - name: my group\n",
			`plans.yaml:4: group name "my group" is not valid: use only letters, digits, '.', '_' and '-' (no spaces)`},
		{"group name empty", "plans:\n  p:\n    groups:\n      - name: \"\"\n",
			`plans.yaml:4: group 1 of plan "p" has an empty name`},
		{"group name too long", "plans:\n  p:\n    groups:\n      - name: " + strings.Repeat("g", 65) + "\n",
			`plans.yaml:4: group name "` + strings.Repeat("g", 64) + `…" is longer than 64 characters`},
		{"group without name", "plans:\n  p:\n    groups:\n      - targets: [{vapp: v}]\n",
			`plans.yaml:4: group 1 of plan "p" has no name`},

		// Limits.
		{"too many groups", manyGroups.String(), `plans.yaml:104: plan "big" has 51 groups; at most 50 are allowed`},
		{"too many targets", manyTargets.String(), `plans.yaml:508: plan "big" has more than 500 target entries; at most 500 are allowed`},

		// YAML itself and node kinds.
		{"not YAML", "plans:\n  p: [\n    groups\n", `plans.yaml:2: not valid YAML: did not find expected ',' or ']'`},
		{"not YAML, bad indentation", "plans:\n  p:\n    groups: []\n   x: 1\n", `plans.yaml:2: not valid YAML: did not find expected key`},
		{"not YAML, scanner", "plans:\n  p: a: b\n", `plans.yaml:2: not valid YAML: mapping values are not allowed in this context`},
		{"tab indentation", "plans:\n\tp: {}\n", `plans.yaml:2: not valid YAML: found character that cannot start any token`},
		{"alias", "plans:\n  p: &x\n    groups: []\n  q: *x\n",
			`plans.yaml:4: YAML alias "*x" is not allowed in a plans file (a guard against alias bombs); write the value out`},
		{"merge key", group1("          - &t {vapp: a}\n          - <<: *t\n"),
			`plans.yaml:7: YAML alias "*t" is not allowed in a plans file (a guard against alias bombs); write the value out`},
		{"two documents", "plans: {}\n---\nplans: {}\n", `plans.yaml:2: a second YAML document starts here; a plans file is one document`},
		{"file is a list", "- plans\n", `plans.yaml:1: the file must be a map with a "plans" key, got a list`},
		{"plans is a list", "plans:\n  - site-b\n", `plans.yaml:2: "plans" must be a map of plan names to plans, got a list`},
		{"plan is a list", "plans:\n  p:\n    - groups\n", `plans.yaml:3: plan "p" must be a map (description, restore, groups), got a list`},
		{"groups is a map", "plans:\n  p:\n    groups:\n      name: g\n", `plans.yaml:4: groups of plan "p" must be a list of groups, got a map`},
		{"group is a value", "plans:\n  p:\n    groups:\n      - g\n", `plans.yaml:4: group 1 of plan "p" must be a map (name, concurrency, delay_after, targets), got the value "g"`},
		{"targets is a map", "plans:\n  p:\n    groups:\n      - name: g\n        targets:\n          replica: R\n",
			`plans.yaml:6: targets of group "g" must be a list of targets, got a map`},
		{"target is a list", group1("          - [a]\n"),
			`plans.yaml:6: target 1 of group "g" must be a map (replica, vms, except, vapp, vapps, criticality), got a list`},
		{"vms is a value", group1("          - replica: R\n            vms: web01\n"),
			`plans.yaml:7: vms of target 1 of group "g" must be a list of VM names (e.g. [a, b]), got the value "web01"`},
		{"vms entry is a map", group1("          - replica: R\n            vms:\n              - name: a\n"),
			`plans.yaml:8: VM name in vms of target 1 of group "g" must be a single value, got a map`},
		{"replica is a list", group1("          - replica: [R]\n"),
			`plans.yaml:6: replica name in target 1 of group "g" must be a single value, got a list`},
		{"description is a map", "plans:\n  p:\n    description: {a: b}\n",
			`plans.yaml:3: description of plan "p" must be a single value, got a map`},
		{"concurrency is a list", group1("          - vapp: v\n") + "        concurrency: [2]\n",
			`plans.yaml:7: concurrency of group "g" must be a single value, got a list`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse("plans.yaml", []byte(tc.src))
			if err == nil {
				t.Fatalf("Parse succeeded (%s), want error %q\n%s", f.Summary(), tc.want, tc.src)
			}
			if err.Error() != tc.want {
				t.Fatalf("error\n got: %s\nwant: %s\n%s", err, tc.want, tc.src)
			}
		})
	}
}

func TestSameTargetInTwoPlans(t *testing.T) {
	f := mustParse(t, "plans:\n  a:\n    groups: [{name: g, targets: [{replica: R}, {vapp: V}]}]\n"+
		"  b:\n    groups: [{name: g, targets: [{replica: R, vms: [x]}, {vapps: [V]}]}]\n")
	if len(f.Plans) != 2 {
		t.Fatalf("got %d plans", len(f.Plans))
	}
}

func TestLoad(t *testing.T) {
	good := readTestdata(t, "good.yaml")
	path := writeFile(t, "plans.yaml", good)
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := goodFile()
	want.Path = path
	if !reflect.DeepEqual(f, want) {
		t.Fatalf("got\n%#v\nwant\n%#v", f, want)
	}

	// A bad file names the path as given.
	bad := writeFile(t, "bad.yaml", []byte("plans:\n  p:\n"))
	if _, err := Load(bad); err == nil || err.Error() != bad+`:2: plan "p" has no groups` {
		t.Fatalf("Load(bad) = %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.yaml")
	_, err := Load(missing)
	if err == nil || err.Error() != missing+": cannot read plans file: no such file or directory" {
		t.Fatalf("Load(missing) = %v", err)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) error is not fs.ErrNotExist: %v", err)
	}

	if _, err := Load(dir); err == nil || err.Error() != dir+": cannot read plans file: is a directory" {
		t.Fatalf("Load(dir) = %v", err)
	}

	big := append([]byte("plans:\n"), make([]byte, maxFileSize)...)
	for i := 7; i < len(big); i++ {
		big[i] = '#'
	}
	path := writeFile(t, "big.yaml", big)
	want := fmt.Sprintf("%s: plans file is too large (%d bytes); at most 1 MiB (1048576 bytes)", path, len(big))
	if _, err := Load(path); err == nil || err.Error() != want {
		t.Fatalf("Load(big) = %v, want %s", err, want)
	}
	if _, err := Parse("big.yaml", big); err == nil || !strings.HasPrefix(err.Error(), "big.yaml: plans file is too large") {
		t.Fatalf("Parse(big) = %v", err)
	}

	// Exactly 1 MiB is fine.
	path = writeFile(t, "max.yaml", append(readTestdata(t, "good.yaml"), make([]byte, 0)...))
	data, _ := os.ReadFile(path)
	pad := maxFileSize - len(data)
	data = append(data, []byte("#"+strings.Repeat("x", pad-2)+"\n")...)
	if len(data) != maxFileSize {
		t.Fatalf("padded to %d", len(data))
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Fatalf("Load(1 MiB) = %v", err)
	}
}

func TestPlanLookup(t *testing.T) {
	f := mustParse(t, "plans:\n  site-b:\n    groups: [{name: g, targets: [{vapp: v}]}]\n  Site-C.2:\n    groups: [{name: g, targets: [{vapp: v}]}]\n")
	tests := []struct {
		name, want string
		ok         bool
	}{
		{"site-b", "site-b", true},
		{"SITE-B", "site-b", true},
		{"site-c.2", "Site-C.2", true},
		{"site", "", false},
		{"", "", false},
	}
	for _, tc := range tests {
		p, ok := f.Plan(tc.name)
		if ok != tc.ok || (ok && p.Name != tc.want) {
			t.Errorf("Plan(%q) = %v, %v; want %q, %v", tc.name, p, ok, tc.want, tc.ok)
		}
	}
	p, _ := f.Plan("site-b")
	if p != &f.Plans[0] {
		t.Error("Plan does not point into File.Plans")
	}
	var nilFile *File
	if _, ok := nilFile.Plan("x"); ok {
		t.Error("nil File found a plan")
	}
}

func TestSize(t *testing.T) {
	f := mustParse(t, string(readTestdata(t, "good.yaml")))
	if g, n := f.Plans[0].Size(); g != 2 || n != 5 {
		t.Fatalf("Size() = %d, %d; want 2, 5", g, n)
	}
	var empty Plan
	if g, n := empty.Size(); g != 0 || n != 0 {
		t.Fatalf("empty Size() = %d, %d", g, n)
	}
}

func TestTargetString(t *testing.T) {
	tests := []struct {
		t    Target
		want string
	}{
		{Target{Replica: "CDP-Web"}, "replica CDP-Web"},
		{Target{Replica: "CDP-Web", VMs: []string{"web01", "web02"}}, "CDP-Web: web01, web02"},
		{Target{Replica: "CDP-Web", Except: []string{"web03"}}, "CDP-Web except web03"},
		{Target{Replica: "CDP-Web", Except: []string{"web03", "web04"}, Optional: true}, "CDP-Web except web03, web04"},
		{Target{VApps: []string{"Finance-App"}}, "vApp Finance-App"},
		{Target{VApps: []string{"HR-App", "CRM-App"}}, "vApps HR-App, CRM-App"},
		{Target{}, "nothing"},
	}
	for _, tc := range tests {
		if got := tc.t.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.t, got, tc.want)
		}
	}
}

func TestSummary(t *testing.T) {
	f := mustParse(t, string(readTestdata(t, "good.yaml")))
	want := "site-b: 2 groups (databases: 2 targets, concurrency 2, then 2m; apps: 3 targets) — Fail over site B, databases first"
	if got := f.Summary(); got != want {
		t.Fatalf("Summary()\n got: %s\nwant: %s", got, want)
	}

	f = mustParse(t, "plans:\n  a:\n    restore: latest-vss\n    groups:\n      - {name: g, delay_after: 1h30m, targets: [{vapp: v}]}\n      - {name: h, delay_after: 1h, targets: [{vapp: w}]}\n"+
		"  b:\n    groups: [{name: g, delay_after: 90s, targets: [{vapp: v}]}]\n")
	want = "a: 2 groups (g: 1 target, then 1h30m; h: 1 target, then 1h), restore latest-vss\n" +
		"b: 1 group (g: 1 target, then 1m30s)"
	if got := f.Summary(); got != want {
		t.Fatalf("Summary()\n got: %s\nwant: %s", got, want)
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"concurency", "concurrency", 1},
		{"nmae", "name", 1},
		{"name", "name", 0},
		{"delay", "delay_after", 3},
		{"", "vms", 3},
		{"vm", "vms", 1},
	}
	for _, tc := range tests {
		if got := editDistance(tc.a, tc.b, 3); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
