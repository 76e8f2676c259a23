// Package plans loads and validates the recovery-plans file (PLANS_FILE).
//
// A plans file names recovery plans. Each plan is an ordered list of groups
// that run one after another (databases before the apps that need them). A
// group lists targets — a whole CDP replica, some VMs of a replica, or vApps —
// and may set:
//
//   - concurrency: how many of its items may be failing over at once
//     (a positive integer; absent means the bot's default);
//   - delay_after: how long to wait, once every item of the group has an
//     outcome, before the next group starts (a Go duration from 0 to 24h).
//
// Each target has a criticality: critical (the default; its failure halts the
// plan before the next group) or optional. A plan may set its default restore
// option: latest (the default) or latest-vss. The words of restore and
// criticality are accepted in any letter case.
//
// The file format:
//
//	# plans.yaml
//	plans:
//	  site-b:
//	    description: Fail over site B, databases first   # optional
//	    restore: latest            # optional: latest (default) | latest-vss
//	    groups:
//	      - name: databases
//	        concurrency: 2         # optional, >= 1
//	        delay_after: 2m        # optional Go duration, >= 0, at most 24h
//	        targets:
//	          - replica: CDP-Finance            # every VM of the replica, as EM lists them when the plan is requested
//	          - replica: CDP-Web
//	            vms: [web-db01]                 # only these VMs of that replica
//	      - name: apps
//	        targets:
//	          - replica: CDP-Web
//	            except: [web-db01]              # the replica minus these VMs (optional)
//	            criticality: optional
//	          - vapp: Finance-App
//	          - vapps: [HR-App, CRM-App]        # several vApps
//	            criticality: optional
//
// Rules checked by [Parse]:
//
//   - the file is one YAML document, a map whose only key is plans; plans is
//     a map of plan names to plans, with at least one plan;
//   - plan and group names are 1 to 64 characters of [A-Za-z0-9._-]; plan names
//     are unique case-insensitively, group names are unique within a plan;
//   - every plan has 1 to 50 groups, every group at least one target, and a
//     plan has at most 500 target entries;
//   - a target gives exactly one of replica, vapp or vapps; vms and except go
//     with replica only, and not together;
//   - names of replicas, VMs and vApps are not empty, have no control
//     characters and no leading or trailing spaces;
//   - a target appears once per plan: the same VM of a replica twice, the same
//     vApp twice, a replica taken whole twice (with or without except), or a
//     whole replica together with any other entry of that replica is refused,
//     save that a replica minus its except list may go with entries of the VMs
//     it leaves out (CDP-Web above). Names compare case-insensitively; the
//     same target in two plans is fine;
//   - keys are known ones (a near miss gets a "did you mean"), appear once, and
//     values have the expected kind (map, list or single value);
//   - YAML aliases are refused (a billion-laughs guard); [Load] refuses files
//     larger than 1 MiB.
//
// Every error is one line, "<path>:<line>: <problem>", or "<path>: <problem>"
// for a problem of the whole file.
package plans

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"
)

// Restore options of a plan.
const (
	restoreLatest    = "latest"
	restoreLatestVSS = "latest-vss"
)

// File is a parsed and validated plans file.
type File struct {
	Path  string // as given to Load / Parse
	Plans []Plan // in file order
}

// Plan is one recovery plan: groups run one after another.
type Plan struct {
	Name, Description string
	Line              int
	Restore           string // "latest" or "latest-vss" (never empty after parsing; default "latest")
	Groups            []Group
}

// Group is one step of a plan.
type Group struct {
	Name        string
	Line        int
	Concurrency int           // 0 = the bot's default
	Delay       time.Duration // after the group
	Targets     []Target
}

// Target is one entry of a group's targets: a replica (whole, some VMs, or
// minus some VMs) or one or more vApps.
type Target struct {
	Line     int
	Replica  string   // set for replica targets
	VMs      []string // with Replica: only these VMs; empty = the whole replica
	Except   []string // with Replica and no VMs: VMs left out
	VApps    []string // vApp targets (vapp: X gives VApps = [X])
	Optional bool
}

// Load reads the plans file at path and parses it (see [Parse]). A file
// larger than 1 MiB is refused.
func Load(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, readError(path, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return nil, readError(path, err)
	} else if st.IsDir() {
		return nil, fmt.Errorf("%s: cannot read plans file: is a directory", path)
	} else if st.Size() > maxFileSize {
		return nil, tooLarge(path, st.Size())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, readError(path, err)
	}
	if len(data) > maxFileSize {
		return nil, tooLarge(path, int64(len(data)))
	}
	return Parse(path, data)
}

func readError(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("%s: cannot read plans file: %w", path, err)
}

func tooLarge(path string, size int64) error {
	return fmt.Errorf("%s: plans file is too large (%d bytes); at most 1 MiB (%d bytes)", path, size, maxFileSize)
}

// Parse parses and validates the plans file data; path is used in errors
// and in File.Path only.
func Parse(path string, data []byte) (*File, error) {
	if len(data) > maxFileSize {
		return nil, tooLarge(path, int64(len(data)))
	}
	p := &parser{path: path}
	return p.parse(data)
}

// Plan returns the plan with that name, compared case-insensitively.
func (f *File) Plan(name string) (*Plan, bool) {
	if f == nil {
		return nil, false
	}
	for i := range f.Plans {
		if strings.EqualFold(f.Plans[i].Name, name) {
			return &f.Plans[i], true
		}
	}
	return nil, false
}

// Size returns the number of groups and of target entries of the plan
// (a replica entry counts once, whatever number of VMs it resolves to later).
func (p *Plan) Size() (groups, targets int) {
	for _, g := range p.Groups {
		targets += len(g.Targets)
	}
	return len(p.Groups), targets
}

// String describes the target, e.g. "replica CDP-Web", "CDP-Web: web01, web02",
// "CDP-Web except web03", "vApp Finance-App" or "vApps HR-App, CRM-App".
func (t Target) String() string {
	switch {
	case t.Replica != "" && len(t.VMs) > 0:
		return t.Replica + ": " + strings.Join(t.VMs, ", ")
	case t.Replica != "" && len(t.Except) > 0:
		return t.Replica + " except " + strings.Join(t.Except, ", ")
	case t.Replica != "":
		return "replica " + t.Replica
	case len(t.VApps) == 1:
		return "vApp " + t.VApps[0]
	case len(t.VApps) > 1:
		return "vApps " + strings.Join(t.VApps, ", ")
	}
	return "nothing"
}

// Summary describes the file, one line per plan, e.g.
//
//	site-b: 2 groups (databases: 2 targets, concurrency 2, then 2m; apps: 3 targets) — Fail over site B, databases first
//
// A plan restoring latest-vss says so after the groups.
func (f *File) Summary() string {
	if f == nil {
		return ""
	}
	lines := make([]string, 0, len(f.Plans))
	for _, p := range f.Plans {
		var b strings.Builder
		b.WriteString(p.Name)
		b.WriteString(": ")
		b.WriteString(count(len(p.Groups), "group"))
		b.WriteString(" (")
		for i, g := range p.Groups {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(g.Name)
			b.WriteString(": ")
			b.WriteString(count(len(g.Targets), "target"))
			if g.Concurrency > 0 {
				b.WriteString(", concurrency ")
				b.WriteString(strconv.Itoa(g.Concurrency))
			}
			if g.Delay > 0 {
				b.WriteString(", then ")
				b.WriteString(formatDuration(g.Delay))
			}
		}
		b.WriteString(")")
		if p.Restore != "" && p.Restore != restoreLatest {
			b.WriteString(", restore ")
			b.WriteString(p.Restore)
		}
		if p.Description != "" {
			b.WriteString(" — ")
			b.WriteString(p.Description)
		}
		lines = append(lines, b.String())
	}
	return strings.Join(lines, "\n")
}

func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// formatDuration writes d without the zero units time.Duration.String keeps:
// 2m rather than 2m0s, 1h rather than 1h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
