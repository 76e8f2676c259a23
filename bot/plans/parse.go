package plans

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

const (
	maxFileSize    = 1 << 20 // bytes
	maxGroups      = 50      // per plan
	maxTargets     = 500     // target entries per plan
	maxNameLen     = 64      // plan and group names
	maxItemNameLen = 255     // replica, VM and vApp names
	maxDelay       = 24 * time.Hour
	maxQuoted      = 64 // runes of a user's text quoted in an error
)

var (
	topKeys    = []string{"plans"}
	planKeys   = []string{"description", "restore", "groups"}
	groupKeys  = []string{"name", "concurrency", "delay_after", "targets"}
	targetKeys = []string{"replica", "vms", "except", "vapp", "vapps", "criticality"}

	yamlLine = regexp.MustCompile(`^line ([0-9]+): `)
	digits   = regexp.MustCompile(`^[0-9]+$`)
)

type parser struct {
	path string
}

// errf makes a one-line error "<path>:<line>: <problem>", or "<path>: <problem>"
// when line is not known.
func (p *parser) errf(line int, format string, args ...any) error {
	msg := oneLine(fmt.Sprintf(format, args...))
	if line > 0 {
		return errors.New(p.path + ":" + strconv.Itoa(line) + ": " + msg)
	}
	return errors.New(p.path + ": " + msg)
}

func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
}

func (p *parser) parse(data []byte) (*File, error) {
	root, err := p.decode(data)
	if err != nil {
		return nil, err
	}
	if root == nil || isNull(root) {
		line := 0
		if root != nil {
			line = root.Line
		}
		return nil, p.errf(line, `no plans: the file is empty; it needs a "plans" map of plan names to plans`)
	}
	if err := p.noAliases(root); err != nil {
		return nil, err
	}
	if root.Kind != yaml.MappingNode {
		return nil, p.errf(root.Line, `the file must be a map with a "plans" key, got %s`, describe(root))
	}
	top, err := p.fields(root, topKeys, "top-level ", "")
	if err != nil {
		return nil, err
	}
	pl, ok := top["plans"]
	if !ok {
		return nil, p.errf(root.Line, `no plans: the file has no "plans" key`)
	}
	f := &File{Path: p.path}
	if f.Plans, err = p.plans(pl); err != nil {
		return nil, err
	}
	return f, nil
}

// decode parses data as one YAML document and returns its root node, or nil
// for a file without any document.
func (p *parser) decode(data []byte) (root *yaml.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			root, err = nil, p.errf(0, "not valid YAML: the parser failed: %s", clip(fmt.Sprint(r), 200))
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, p.yamlError(err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return nil, p.errf(next.Line, "a second YAML document starts here; a plans file is one document")
	} else if !errors.Is(err, io.EOF) {
		return nil, p.yamlError(err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

// parserProblems are the problems of yaml's parser (as opposed to its
// scanner). yaml v3 reports their line counted from 0 (it adds 1 for scanner
// errors only), so yamlError adds the missing 1.
var parserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
	"found undefined tag handle":             true,
}

// yamlError turns an error of the YAML parser ("yaml: line 3: did not find
// expected key") into ours, keeping the parser's line.
func (p *parser) yamlError(err error) error {
	msg := strings.TrimPrefix(oneLine(err.Error()), "yaml: ")
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		if line, err := strconv.Atoi(m[1]); err == nil && line < 1<<30 {
			problem := msg[len(m[0]):]
			if parserProblems[problem] {
				line++
			}
			return p.errf(line, "not valid YAML: %s", clip(problem, 200))
		}
	}
	return p.errf(0, "not valid YAML: %s", clip(msg, 200))
}

// noAliases refuses any alias, wherever it is: aliases are how YAML bombs
// are built, and a plans file has no need of them.
func (p *parser) noAliases(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode {
		return p.errf(n.Line, "YAML alias %s is not allowed in a plans file (a guard against alias bombs); write the value out", quote("*"+n.Value))
	}
	for _, c := range n.Content {
		if err := p.noAliases(c); err != nil {
			return err
		}
	}
	return nil
}

type field struct {
	key, val *yaml.Node
}

// fields checks that m (a mapping) has single-word keys, each known and given
// once, and returns its fields by key. kind is "top-level " or "", in is
// where the map is (` in group "apps"`).
func (p *parser) fields(m *yaml.Node, known []string, kind, in string) (map[string]field, error) {
	out := make(map[string]field, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, p.errf(k.Line, "%skeys%s must be single words, got %s", kind, in, describe(k))
		}
		if !contains(known, k.Value) {
			return nil, p.errf(k.Line, "unknown %skey %s%s (known: %s)%s", kind, quote(k.Value), in, strings.Join(known, ", "), suggest(k.Value, known))
		}
		if prev, dup := out[k.Value]; dup {
			return nil, p.errf(k.Line, "%skey %q appears twice%s (first at line %d)", kind, k.Value, in, prev.key.Line)
		}
		out[k.Value] = field{k, v}
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// suggest returns `; did you mean "x"?` for the known key nearest to k, when
// it is at most 2 edits away.
func suggest(k string, known []string) string {
	best, bestD := "", 3
	lk := strings.ToLower(k)
	for _, c := range known {
		if d := editDistance(lk, c, bestD); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// editDistance is the optimal-string-alignment distance of a and b (edits,
// with transposition of neighbours as one edit), or limit when it is at least
// limit.
func editDistance(a, b string, limit int) int {
	ra, rb := []rune(a), []rune(b)
	if d := len(ra) - len(rb); d >= limit || -d >= limit {
		return limit
	}
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return min(prev[len(rb)], limit)
}

// plans parses the value of the top-level "plans" key.
func (p *parser) plans(pl field) ([]Plan, error) {
	n := pl.val
	if isNull(n) || (n.Kind == yaml.MappingNode && len(n.Content) == 0) {
		return nil, p.errf(pl.key.Line, `"plans" is empty; define at least one plan`)
	}
	if n.Kind != yaml.MappingNode {
		return nil, p.errf(n.Line, `"plans" must be a map of plan names to plans, got %s`, describe(n))
	}
	var out []Plan
	seen := make(map[string]int) // folded name → line
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, p.errf(k.Line, "plan names must be single words, got %s", describe(k))
		}
		name := k.Value
		if isNull(k) {
			name = ""
		}
		if problem := checkName("plan", name); problem != "" {
			return nil, p.errf(k.Line, "%s", problem)
		}
		fk := foldKey(name)
		if line, dup := seen[fk]; dup {
			return nil, p.errf(k.Line, "plan %q is already defined at line %d (plan names compare case-insensitively)", name, line)
		}
		seen[fk] = k.Line
		plan, err := p.plan(name, k, v)
		if err != nil {
			return nil, err
		}
		out = append(out, plan)
	}
	return out, nil
}

func (p *parser) plan(name string, k, v *yaml.Node) (Plan, error) {
	plan := Plan{Name: name, Line: k.Line, Restore: restoreLatest}
	if isNull(v) {
		return plan, p.errf(k.Line, "plan %q has no groups", name)
	}
	if v.Kind != yaml.MappingNode {
		return plan, p.errf(v.Line, "plan %q must be a map (%s), got %s", name, strings.Join(planKeys, ", "), describe(v))
	}
	fs, err := p.fields(v, planKeys, "", fmt.Sprintf(" in plan %q", name))
	if err != nil {
		return plan, err
	}
	if d, ok := fs["description"]; ok {
		if err := p.scalar(d.val, fmt.Sprintf("description of plan %q", name)); err != nil {
			return plan, err
		}
		if !isNull(d.val) {
			plan.Description = strings.Join(strings.Fields(d.val.Value), " ")
		}
		if strings.IndexFunc(plan.Description, badRune) >= 0 {
			return plan, p.errf(d.val.Line, "description of plan %q has a control character", name)
		}
	}
	if r, ok := fs["restore"]; ok {
		if err := p.scalar(r.val, fmt.Sprintf("restore of plan %q", name)); err != nil {
			return plan, err
		}
		switch val := r.val.Value; {
		case strings.EqualFold(val, restoreLatest):
			plan.Restore = restoreLatest
		case strings.EqualFold(val, restoreLatestVSS):
			plan.Restore = restoreLatestVSS
		default:
			return plan, p.errf(r.val.Line, "restore %s of plan %q is not latest or latest-vss", quote(nullAsEmpty(r.val)), name)
		}
	}
	g, ok := fs["groups"]
	if !ok {
		return plan, p.errf(k.Line, "plan %q has no groups", name)
	}
	if isNull(g.val) || (g.val.Kind == yaml.SequenceNode && len(g.val.Content) == 0) {
		return plan, p.errf(g.key.Line, "plan %q has no groups", name)
	}
	if g.val.Kind != yaml.SequenceNode {
		return plan, p.errf(g.val.Line, "groups of plan %q must be a list of groups, got %s", name, describe(g.val))
	}
	if n := len(g.val.Content); n > maxGroups {
		return plan, p.errf(g.val.Content[maxGroups].Line, "plan %q has %d groups; at most %d are allowed", name, n, maxGroups)
	}
	st := &planState{plan: name}
	groupLines := make(map[string]int)
	for i, gn := range g.val.Content {
		group, err := p.group(st, i+1, gn)
		if err != nil {
			return plan, err
		}
		fk := foldKey(group.Name)
		if line, dup := groupLines[fk]; dup {
			return plan, p.errf(group.Line, "group %q appears twice in plan %q (first at line %d)", group.Name, name, line)
		}
		groupLines[fk] = group.Line
		plan.Groups = append(plan.Groups, group)
	}
	return plan, nil
}

// planState is what the groups of one plan have claimed so far.
type planState struct {
	plan     string
	group    string                   // the group being parsed
	targets  int                      // target entries so far
	replicas map[string]*replicaClaim // folded replica name → its entries
	vapps    map[string]claim         // folded vApp name → entry
}

// replicaClaim is what the entries of one replica take in a plan: at most one
// whole-replica entry (minus its except list), and VMs by name. A VM entry
// may go with a whole-replica entry only when the VM is in its except list.
type replicaClaim struct {
	whole  *claim          // the whole-replica entry, if any
	except map[string]bool // folded VM names of its except list
	vms    []claim         // VM entries in file order
	byVM   map[string]int  // folded VM name → index in vms
}

type claim struct {
	what  string // as written: "CDP-Web/web01", "replica CDP-Web", "CDP-Web except web03", "Finance-App"
	vm    string // the VM of a VM entry, as written
	group string
	line  int
}

func (st *planState) replica(name string) *replicaClaim {
	k := foldKey(name)
	if st.replicas == nil {
		st.replicas = make(map[string]*replicaClaim)
	}
	rc := st.replicas[k]
	if rc == nil {
		rc = &replicaClaim{byVM: make(map[string]int)}
		st.replicas[k] = rc
	}
	return rc
}

func (p *parser) group(st *planState, idx int, n *yaml.Node) (Group, error) {
	var g Group
	g.Line = n.Line
	if n.Kind != yaml.MappingNode {
		return g, p.errf(n.Line, "group %d of plan %q must be a map (%s), got %s", idx, st.plan, strings.Join(groupKeys, ", "), describe(n))
	}
	label := fmt.Sprintf("group %d of plan %q", idx, st.plan)
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k, v := n.Content[i], n.Content[i+1]; k.Kind == yaml.ScalarNode && k.Value == "name" &&
			v.Kind == yaml.ScalarNode && !isNull(v) && v.Value != "" {
			label = "group " + quote(v.Value)
			break
		}
	}
	fs, err := p.fields(n, groupKeys, "", " in "+label)
	if err != nil {
		return g, err
	}
	nm, ok := fs["name"]
	if !ok {
		return g, p.errf(n.Line, "group %d of plan %q has no name", idx, st.plan)
	}
	if err := p.scalar(nm.val, fmt.Sprintf("name of group %d of plan %q", idx, st.plan)); err != nil {
		return g, err
	}
	g.Name = nullAsEmpty(nm.val)
	if g.Name == "" {
		return g, p.errf(nm.key.Line, "group %d of plan %q has an empty name", idx, st.plan)
	}
	if problem := checkName("group", g.Name); problem != "" {
		return g, p.errf(nm.val.Line, "%s", problem)
	}
	label = fmt.Sprintf("group %q", g.Name)
	st.group = g.Name

	if c, ok := fs["concurrency"]; ok {
		if err := p.scalar(c.val, "concurrency of "+label); err != nil {
			return g, err
		}
		v := nullAsEmpty(c.val)
		conc, err := strconv.Atoi(v)
		switch {
		case !digits.MatchString(v) || err != nil:
			return g, p.errf(c.val.Line, "concurrency %s of %s is not a positive integer", quote(v), label)
		case conc == 0:
			return g, p.errf(c.val.Line, "concurrency 0 of %s is not a positive integer; leave it out for the bot's default", label)
		}
		g.Concurrency = conc
	}
	if d, ok := fs["delay_after"]; ok {
		if err := p.scalar(d.val, "delay_after of "+label); err != nil {
			return g, err
		}
		v := nullAsEmpty(d.val)
		dur, err := time.ParseDuration(v)
		switch {
		case err != nil:
			return g, p.errf(d.val.Line, "delay_after %s is not a duration (write e.g. 90s, 2m, 1h30m)", quote(v))
		case dur < 0:
			return g, p.errf(d.val.Line, "delay_after %s is negative; write 0 or more (e.g. 90s, 2m)", quote(v))
		case dur > maxDelay:
			return g, p.errf(d.val.Line, "delay_after %s is more than 24h", quote(v))
		}
		g.Delay = dur
	}
	t, ok := fs["targets"]
	if !ok {
		return g, p.errf(n.Line, "%s of plan %q has no targets", label, st.plan)
	}
	if isNull(t.val) || (t.val.Kind == yaml.SequenceNode && len(t.val.Content) == 0) {
		return g, p.errf(t.key.Line, "%s of plan %q has no targets", label, st.plan)
	}
	if t.val.Kind != yaml.SequenceNode {
		return g, p.errf(t.val.Line, "targets of %s must be a list of targets, got %s", label, describe(t.val))
	}
	if st.targets+len(t.val.Content) > maxTargets {
		return g, p.errf(t.val.Content[maxTargets-st.targets].Line, "plan %q has more than %d target entries; at most %d are allowed", st.plan, maxTargets, maxTargets)
	}
	st.targets += len(t.val.Content)
	for i, tn := range t.val.Content {
		target, err := p.target(st, fmt.Sprintf("target %d of %s", i+1, label), tn)
		if err != nil {
			return g, err
		}
		g.Targets = append(g.Targets, target)
	}
	return g, nil
}

func (p *parser) target(st *planState, label string, n *yaml.Node) (Target, error) {
	t := Target{Line: n.Line}
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		return t, p.errf(n.Line, "%s is a bare value %s; write %s or %s", label, quote(n.Value),
			quote("replica: "+n.Value), quote("vapp: "+n.Value))
	}
	if n.Kind != yaml.MappingNode {
		return t, p.errf(n.Line, "%s must be a map (%s), got %s", label, strings.Join(targetKeys, ", "), describe(n))
	}
	fs, err := p.fields(n, targetKeys, "", " in "+label)
	if err != nil {
		return t, err
	}
	var kinds []field
	for _, k := range []string{"replica", "vapp", "vapps"} {
		if f, ok := fs[k]; ok {
			kinds = append(kinds, f)
		}
	}
	slices.SortFunc(kinds, func(a, b field) int {
		return cmp.Or(cmp.Compare(a.key.Line, b.key.Line), cmp.Compare(a.key.Column, b.key.Column))
	})
	switch {
	case len(kinds) == 0:
		return t, p.errf(n.Line, "%s names nothing: give one of replica, vapp or vapps", label)
	case len(kinds) > 1:
		return t, p.errf(kinds[1].key.Line, "%s has both %s and %s; give only one of replica, vapp or vapps per entry",
			label, kinds[0].key.Value, kinds[1].key.Value)
	}
	vms, hasVMs := fs["vms"]
	except, hasExcept := fs["except"]
	_, hasReplica := fs["replica"]
	switch {
	case hasVMs && !hasReplica:
		return t, p.errf(vms.key.Line, "vms without replica in %s: vms picks VMs of a replica", label)
	case hasExcept && !hasReplica:
		return t, p.errf(except.key.Line, "except without replica in %s: except leaves VMs of a replica out", label)
	case hasVMs && hasExcept:
		return t, p.errf(except.key.Line, "%s has both vms and except; use vms to pick VMs or except to leave some out, not both", label)
	}
	if c, ok := fs["criticality"]; ok {
		if err := p.scalar(c.val, "criticality of "+label); err != nil {
			return t, err
		}
		switch v := nullAsEmpty(c.val); {
		case strings.EqualFold(v, "critical"):
		case strings.EqualFold(v, "optional"):
			t.Optional = true
		default:
			return t, p.errf(c.val.Line, "criticality %s of %s is not critical or optional", quote(v), label)
		}
	}

	switch f := kinds[0]; f.key.Value {
	case "replica":
		if t.Replica, err = p.itemName(f.val, "replica", label); err != nil {
			return t, err
		}
		if hasVMs {
			names, lines, err := p.nameList(vms, "VM", label, "leave vms out to fail over the whole replica")
			if err != nil {
				return t, err
			}
			for i, vm := range names {
				if err := p.claimVM(st, t.Replica, vm, lines[i]); err != nil {
					return t, err
				}
			}
			t.VMs = names
			return t, nil
		}
		if hasExcept {
			names, lines, err := p.nameList(except, "VM", label, "leave except out to fail over the whole replica")
			if err != nil {
				return t, err
			}
			first := make(map[string]int)
			for i, vm := range names {
				fk := foldKey(vm)
				if line, dup := first[fk]; dup {
					return t, p.errf(lines[i], "VM %s is listed twice in except of %s (first at line %d)", vm, label, line)
				}
				first[fk] = lines[i]
			}
			t.Except = names
		}
		return t, p.claimWhole(st, t, f.val.Line)
	case "vapp":
		name, err := p.itemName(f.val, "vApp", label)
		if err != nil {
			return t, err
		}
		t.VApps = []string{name}
		return t, p.claimVApp(st, name, f.val.Line)
	default: // vapps
		names, lines, err := p.nameList(f, "vApp", label, "list at least one vApp")
		if err != nil {
			return t, err
		}
		for i, name := range names {
			if err := p.claimVApp(st, name, lines[i]); err != nil {
				return t, err
			}
		}
		t.VApps = names
		return t, nil
	}
}

const oncePerPlan = "a target may appear once per plan"

// claimWhole records a whole-replica entry, minus except.
func (p *parser) claimWhole(st *planState, t Target, line int) error {
	rc := st.replica(t.Replica)
	if c := rc.whole; c != nil {
		return p.errf(line, "replica %s is already in group %q (line %d) of plan %q; %s", t.Replica, c.group, c.line, st.plan, oncePerPlan)
	}
	except := make(map[string]bool, len(t.Except))
	for _, vm := range t.Except {
		except[foldKey(vm)] = true
	}
	for _, c := range rc.vms {
		if !except[foldKey(c.vm)] {
			return p.errf(line, "replica %s overlaps %s in group %q (line %d) of plan %q (list %s in except to leave it out); %s",
				t.Replica, c.what, c.group, c.line, st.plan, c.vm, oncePerPlan)
		}
	}
	what := "replica " + t.Replica
	if len(t.Except) > 0 {
		what += " except " + strings.Join(t.Except, ", ")
	}
	rc.whole = &claim{what: what, group: st.group, line: line}
	rc.except = except
	return nil
}

// claimVM records a VM entry of a replica.
func (p *parser) claimVM(st *planState, replica, vm string, line int) error {
	rc := st.replica(replica)
	vk := foldKey(vm)
	what := replica + "/" + vm
	if c := rc.whole; c != nil && !rc.except[vk] {
		return p.errf(line, "%s is already in group %q (line %d) of plan %q, taken by %s; %s", what, c.group, c.line, st.plan, c.what, oncePerPlan)
	}
	if i, ok := rc.byVM[vk]; ok {
		c := rc.vms[i]
		return p.errf(line, "%s is already in group %q (line %d) of plan %q; %s", what, c.group, c.line, st.plan, oncePerPlan)
	}
	rc.byVM[vk] = len(rc.vms)
	rc.vms = append(rc.vms, claim{what: what, vm: vm, group: st.group, line: line})
	return nil
}

func (p *parser) claimVApp(st *planState, name string, line int) error {
	k := foldKey(name)
	if c, ok := st.vapps[k]; ok {
		return p.errf(line, "vApp %s is already in group %q (line %d) of plan %q; %s", name, c.group, c.line, st.plan, oncePerPlan)
	}
	if st.vapps == nil {
		st.vapps = make(map[string]claim)
	}
	st.vapps[k] = claim{what: name, group: st.group, line: line}
	return nil
}

// nameList parses the list of names of f (vms, except or vapps); empty is the
// hint given when the list is empty.
func (p *parser) nameList(f field, kind, label, empty string) ([]string, []int, error) {
	key := f.key.Value
	n := f.val
	if isNull(n) || (n.Kind == yaml.SequenceNode && len(n.Content) == 0) {
		return nil, nil, p.errf(f.key.Line, "%s of %s is empty; %s", key, label, empty)
	}
	if n.Kind != yaml.SequenceNode {
		return nil, nil, p.errf(n.Line, "%s of %s must be a list of %s names (e.g. [a, b]), got %s", key, label, kind, describe(n))
	}
	names := make([]string, 0, len(n.Content))
	lines := make([]int, 0, len(n.Content))
	for _, e := range n.Content {
		name, err := p.itemName(e, kind, key+" of "+label)
		if err != nil {
			return nil, nil, err
		}
		names = append(names, name)
		lines = append(lines, e.Line)
	}
	return names, lines, nil
}

// itemName checks the name of a replica, VM or vApp.
func (p *parser) itemName(n *yaml.Node, kind, where string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", p.errf(n.Line, "%s name in %s must be a single value, got %s", kind, where, describe(n))
	}
	if isNull(n) && n.Value != "" {
		return "", p.errf(n.Line, "%s name %s in %s is YAML's null; quote it if that is the name", kind, n.Value, where)
	}
	name := nullAsEmpty(n)
	switch {
	case name == "":
		return "", p.errf(n.Line, "empty %s name in %s", kind, where)
	case strings.IndexFunc(name, badRune) >= 0:
		return "", p.errf(n.Line, "%s name %s in %s has a control character", kind, quote(name), where)
	case strings.TrimSpace(name) != name:
		return "", p.errf(n.Line, "%s name %s in %s has leading or trailing spaces", kind, quote(name), where)
	case utf8.RuneCountInString(name) > maxItemNameLen:
		return "", p.errf(n.Line, "%s name %s in %s is longer than %d characters", kind, quote(name), where, maxItemNameLen)
	}
	return name, nil
}

// badRune reports runes refused in names and descriptions: control
// characters, line and paragraph separators, and bytes that are not UTF-8.
func badRune(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == utf8.RuneError
}

// checkName returns the problem of a plan or group name, or "".
func checkName(kind, name string) string {
	if name == "" {
		return fmt.Sprintf("a %s has an empty name", kind)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Sprintf("%s name %s is not valid: use only letters, digits, '.', '_' and '-' (no spaces)", kind, quote(name))
		}
	}
	if len(name) > maxNameLen {
		return fmt.Sprintf("%s name %s is longer than %d characters", kind, quote(name), maxNameLen)
	}
	return ""
}

// scalar checks that n is a single value.
func (p *parser) scalar(n *yaml.Node, what string) error {
	if n.Kind != yaml.ScalarNode {
		return p.errf(n.Line, "%s must be a single value, got %s", what, describe(n))
	}
	return nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func nullAsEmpty(n *yaml.Node) string {
	if isNull(n) {
		return ""
	}
	return n.Value
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a map"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing"
		}
		return "the value " + quote(n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "a YAML document"
}

// quote quotes a user's text for an error, cut to maxQuoted runes.
func quote(s string) string {
	return strconv.Quote(clip(s, maxQuoted))
}

func clip(s string, n int) string {
	count := 0
	for i := range s {
		if count == n {
			return s[:i] + "…"
		}
		count++
	}
	return s
}

// foldKey maps s to a key equal for strings equal under Unicode case folding
// (as strings.EqualFold): each rune becomes the smallest of its fold orbit.
func foldKey(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		b.WriteRune(m)
	}
	return b.String()
}
