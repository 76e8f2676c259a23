package core

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mattn/go-shellwords"

	"github.com/failover-bot/failover-bot/store"
)

// Intent is the restore point a requester asks for; it is the store's type, so a parsed
// command goes into a store.NewRequest unchanged.
type Intent = store.Intent

// Restore intents, spelled as the command-line options without the leading "--".
const (
	IntentLatest      = store.IntentLatest
	IntentLatestVSS   = store.IntentLatestVSS
	IntentPointInTime = store.IntentPointInTime
	IntentInterval    = store.IntentInterval
)

// Subcommands of /failover, as stored in Command.Sub.
const (
	SubVM      = "vm"
	SubVApp    = "vapp"
	SubReplica = "replica"
	SubPlan    = "plan"
	SubPlans   = "plans"
	SubCheck   = "check"
	SubStatus  = "status"
	SubList    = "list"
	SubCancel  = "cancel"
	SubStop    = "stop"
	SubHelp    = "help"
)

// MaxReasonLen is the longest accepted --reason, in characters (runes). The reason is shown
// on the card and in every audit line, so it must stay well under Slack's 3,000-character
// section limit.
const MaxReasonLen = 500

// futureSlack is how far after now a restore time may be before it counts as "in the
// future": clocks of the requester, Slack and the bot differ by a few seconds.
const futureSlack = time.Minute

// Command is one parsed /failover invocation. Names are kept as typed: the flow resolves
// them through EM (GUID or name) before an approver is asked anything.
type Command struct {
	Sub     string   // SubVM, SubVApp, SubReplica, SubStatus, SubList, SubCancel, SubStop or SubHelp
	Replica string   // vm, replica: CDP replica, GUID or name as typed
	VM      string   // vm: the first VM, GUID or name as typed
	VApp    string   // vapp: the first vApp, GUID or name as typed
	VMs     []string // vm: every VM, as typed, in order, without repeats
	VApps   []string // vapp: every vApp, as typed, in order, without repeats
	Except  []string // replica: VMs left out (--except), as typed
	Plan    string   // plan: the plan's name, as typed
	// IntentSet says a restore-point option was typed; a plan's own default applies otherwise.
	IntentSet bool
	// Check is set by "/failover check …": the pre-flight alone, nothing stored and nobody
	// asked; Sub is then the subcommand checked (vm, vapp or replica) and --reason is optional.
	Check     bool
	Intent    Intent // vm, vapp: IntentLatest unless an option says otherwise
	Time      time.Time
	Reason    string // vm, vapp: trimmed, non-blank, at most MaxReasonLen characters
	RequestID string // status, cancel: normalised "FO-12"
	// Recent is list's --recent period: the finished requests of that period are listed too
	// (DefaultRecent when --recent has no value); 0 lists only pending and active ones.
	Recent time.Duration
}

// UsageError is returned by ParseCommand for every rejection. Msg is one complete sentence
// saying what was wrong; Usage is the correct usage of the subcommand (or the whole help for
// an unknown subcommand), so the ephemeral answer can show both.
type UsageError struct {
	Msg   string
	Usage string
}

// Error returns Msg only; callers show Usage separately (in a code block).
func (e *UsageError) Error() string { return e.Msg }

const (
	usageVM     = `/failover vm <replica> <vm> [<vm> …] [--latest | --latest-vss | --point-in-time <time> | --interval <time>] --reason "<text>"`
	usageVApp   = `/failover vapp <vapp> [<vapp> …] [--latest | --latest-vss | --point-in-time <time> | --interval <time>] --reason "<text>"`
	usageRepl   = `/failover replica <replica> [--except <vm>[,<vm>…]] [restore-point option] --reason "<text>"`
	usagePlan   = `/failover plan <name> [restore-point option] --reason "<text>"`
	usagePlans  = `/failover plans`
	usageCheck  = `/failover check vm|vapp|replica|plan … (the same arguments; --reason optional)`
	usageStatus = `/failover status <request-id>`
	usageList   = `/failover list [--recent [<period>]]`
	usageCancel = `/failover cancel <request-id>`
	usageStop   = `/failover stop <request-id>`
	usageHelp   = `/failover help`
)

var usages = map[string]string{
	SubVM:      usageVM,
	SubVApp:    usageVApp,
	SubReplica: usageRepl,
	SubPlan:    usagePlan,
	SubPlans:   usagePlans,
	SubCheck:   usageCheck,
	SubStatus:  usageStatus,
	SubList:    usageList,
	SubCancel:  usageCancel,
	SubStop:    usageStop,
	SubHelp:    usageHelp,
}

// Usage returns the usage line of a subcommand, or the whole help text for anything else.
func Usage(sub string) string {
	if u, ok := usages[sub]; ok {
		return u
	}
	return HelpText()
}

// HelpText is the full usage of /failover in Slack mrkdwn.
func HelpText() string { return helpText }

// helpText is built once: help is the most frequent command in a stressful moment.
var helpText = "*/failover* asks for a Veeam CDP replica failover; a second authorised person must approve it before anything is sent to Enterprise Manager.\n" +
	"```\n" +
	usageVM + "\n" +
	usageVApp + "\n" +
	usageRepl + "\n" +
	fmt.Sprintf("%-32s (a recovery plan: its groups in order)\n", usagePlan) +
	fmt.Sprintf("%-32s (the plans and their groups)\n", usagePlans) +
	usageCheck + "\n" +
	fmt.Sprintf("%-32s (one request)\n", usageStatus) +
	fmt.Sprintf("%-32s (pending and active; --recent adds those finished in the last 24h, or 90m, 2d…)\n", usageList) +
	fmt.Sprintf("%-32s (withdraw a pending request; nothing was sent yet)\n", usageCancel) +
	fmt.Sprintf("%-32s (stop a running failover: asks you to confirm; no undo)\n", usageStop) +
	usageHelp + "\n" +
	"```\n" +
	"• `<replica>`, `<vm>`, `<vapp>`: a GUID or a name (quote names with spaces). One request may hold many targets; one approval covers them all.\n" +
	"• `replica` fails over every VM of the replica, as Enterprise Manager lists them now; `check` shows what a request would fail over, to which restore point, without asking anyone.\n" +
	"• `plan` runs a recovery plan from the plans file: one group after another; a failed critical VM halts the run until an approver chooses *Continue* or someone *Stop*s it. `check plan <name>` is its readiness check.\n" +
	"• Restore point: `--latest` (default), `--latest-vss` (latest application-consistent), " +
	"`--point-in-time <time>` or `--interval <time>`.\n" +
	"• `<time>`: RFC 3339, e.g. `2024-05-01T13:45:00Z` or `\"2024-05-01 15:45+02:00\"`; without an offset it is UTC.\n" +
	"• `--reason` is required: say why, in quotes, e.g. `--reason \"site A lost power\"`.\n" +
	"• `<request-id>`: as shown on the card, e.g. `FO-12` (or just `12`).\n" +
	"Example: `/failover vm \"CDP Replica 1\" web-01 --point-in-time 2024-05-01T13:45:00Z --reason \"ransomware on web-01\"`"

// ParseCommand parses the text of a /failover slash command (everything after the command
// name). now is the current time, used to refuse restore points in the future. Every
// rejection is a *UsageError.
func ParseCommand(text string, now time.Time) (Command, error) {
	args, err := splitArgs(text)
	if err != nil {
		// The subcommand is unknown when splitting fails; guess it from the first word so the
		// usage shown is the relevant one.
		sub := ""
		if f := strings.Fields(normaliseSpaces(text)); len(f) > 0 {
			sub = strings.ToLower(f[0])
		}
		return Command{}, &UsageError{Msg: err.Error(), Usage: Usage(sub)}
	}
	if len(args) == 0 {
		return Command{Sub: SubHelp}, nil
	}
	sub := strings.ToLower(args[0])
	rest := args[1:]
	switch sub {
	case SubHelp:
		// "help vm" and the like are answered with the whole help: it is short.
		return Command{Sub: SubHelp}, nil
	case SubList:
		return parseList(rest)
	case SubPlans:
		if len(rest) > 0 {
			return Command{}, usageErr(sub, "`%s` takes no arguments, but got %s.", sub, quoteList(rest))
		}
		return Command{Sub: sub}, nil
	case SubStatus, SubCancel, SubStop:
		return parseIDCommand(sub, rest)
	case SubVM, SubVApp, SubReplica, SubPlan:
		return parseFailover(sub, rest, now, false)
	case SubCheck:
		if len(rest) == 0 {
			return Command{}, usageErr(sub, "`check` needs what to check: vm, vapp, replica or plan, with their arguments.")
		}
		switch what := strings.ToLower(rest[0]); what {
		case SubVM, SubVApp, SubReplica, SubPlan:
			return parseFailover(what, rest[1:], now, true)
		}
		return Command{}, usageErr(sub, "`check` checks vm, vapp, replica or plan, not %q.%s", truncate(rest[0], 40), didYouMean(rest[0], []string{SubVM, SubVApp, SubReplica, SubPlan}))
	default:
		return Command{}, &UsageError{
			Msg:   fmt.Sprintf("Unknown subcommand %q.%s Use one of vm, vapp, replica, plan, plans, check, status, list, cancel, stop or help.", truncate(args[0], 40), didYouMean(args[0], subcommands)),
			Usage: HelpText(),
		}
	}
}

// subcommands are the words /failover understands first, for "did you mean".
var subcommands = []string{SubVM, SubVApp, SubReplica, SubPlan, SubPlans, SubCheck, SubStatus, SubList, SubCancel, SubStop, SubHelp}

func usageErr(sub, format string, a ...any) *UsageError {
	return &UsageError{Msg: fmt.Sprintf(format, a...), Usage: Usage(sub)}
}

// quoteReplacer turns typographic quotes, which Slack clients and phone keyboards insert
// for straight ones, back into straight quotes.
var quoteReplacer = strings.NewReplacer(
	"“", `"`, "”", `"`, "„", `"`, "‟", `"`, "«", `"`, "»", `"`, "＂", `"`,
	"‘", "'", "‚", "'", "‛", "'",
)

// normaliseSpaces maps every Unicode space (no-break space, thin space, …) to an ASCII
// space: shellwords only splits on ASCII whitespace, and pasted text often has others.
func normaliseSpaces(s string) string {
	return strings.Map(func(r rune) rune {
		if r != '\n' && r != '\t' && r != '\r' && unicode.IsSpace(r) {
			return ' '
		}
		return r
	}, s)
}

// normaliseQuotes replaces typographic quotes with straight ones. A right single quote
// between two letters is an apostrophe (“don’t”), not a closing quote, and is kept.
func normaliseQuotes(s string) string {
	s = quoteReplacer.Replace(s)
	if !strings.ContainsRune(s, '’') {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	prev := rune(-1)
	for i, r := range s {
		if r == '’' {
			next, _ := utf8.DecodeRuneInString(s[i+len("’"):])
			if !(unicode.IsLetter(prev) && unicode.IsLetter(next)) {
				r = '\''
			}
		}
		b.WriteRune(r)
		prev = r
	}
	return b.String()
}

// slackUnescaper undoes the only escaping Slack applies to slash-command text (with
// should_escape off): &, < and > arrive as HTML entities.
var slackUnescaper = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">")

// SplitArgs splits a command's text into words exactly as ParseCommand does: typographic quotes
// and Unicode spaces made plain, then shell-style quoting where only quotes and backslashes are
// special, and Slack's &amp; &lt; &gt; undone in each word. Its error is the sentence a person
// is shown. The console splits its typed clicks with it, so they read as Slack's commands do.
func SplitArgs(text string) ([]string, error) { return splitArgs(text) }

func splitArgs(text string) ([]string, error) {
	text = normaliseQuotes(normaliseSpaces(text))
	p := shellwords.NewParser()
	// Shell metacharacters are ordinary characters here: "(urgent)" or "A&B" in a reason
	// must not end the command line or fail it. Only quotes and backslashes are special.
	p.SetExcludeSeparators(';', '&', '|', '<', '>', '(', ')', '`', '$')
	args, err := p.Parse(text)
	if err != nil {
		return nil, errors.New("The command has an unbalanced quote (or a trailing backslash): close every \" and ', or put text containing an apostrophe in double quotes.")
	}
	if p.Position >= 0 {
		// Unreachable with the separators above excluded; kept so a library change cannot
		// silently drop the end of a command.
		return nil, fmt.Errorf("The command contains a character that cannot be used unquoted at position %d: put that text in double quotes.", p.Position)
	}
	for i, a := range args {
		args[i] = slackUnescaper.Replace(a)
	}
	return args, nil
}

var requestIDPattern = regexp.MustCompile(`^(?i)(?:FO-?)?#?0*([0-9]{1,18})$`)

// NormaliseRequestID accepts "FO-12", "fo-12", "FO12", "#12" or "12" and returns "FO-12".
func NormaliseRequestID(s string) (string, bool) {
	m := requestIDPattern.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return "", false
	}
	n, err := strconv.ParseUint(m[1], 10, 64)
	if err != nil || n == 0 {
		return "", false
	}
	return "FO-" + strconv.FormatUint(n, 10), true
}

func parseIDCommand(sub string, rest []string) (Command, error) {
	switch {
	case len(rest) == 0:
		return Command{}, usageErr(sub, "`%s` needs a request ID, e.g. `/failover %s FO-12`.", sub, sub)
	case len(rest) > 1:
		return Command{}, usageErr(sub, "`%s` takes one request ID, but got %s.", sub, quoteList(rest))
	}
	id, ok := NormaliseRequestID(rest[0])
	if !ok {
		return Command{}, usageErr(sub, "%q is not a request ID: use the ID shown on the card, e.g. FO-12.", truncate(rest[0], 40))
	}
	return Command{Sub: sub, RequestID: id}, nil
}

// option flags of vm and vapp.
const (
	optLatest      = "--latest"
	optLatestVSS   = "--latest-vss"
	optPointInTime = "--point-in-time"
	optInterval    = "--interval"
	optReason      = "--reason"
	optExcept      = "--except"
)

var intentOptions = map[string]Intent{
	optLatest:      IntentLatest,
	optLatestVSS:   IntentLatestVSS,
	optPointInTime: IntentPointInTime,
	optInterval:    IntentInterval,
}

// normaliseDashes turns a leading em or en dash, which macOS and phone keyboards substitute
// for "--", back into "--" so "—reason" still works. Only the start of a word is touched.
func normaliseDashes(arg string) string {
	for _, d := range []string{"—", "–"} {
		if strings.HasPrefix(arg, d) {
			return "--" + strings.TrimLeft(arg[len(d):], "-")
		}
	}
	return arg
}

func isOption(arg string) bool {
	return strings.HasPrefix(arg, "--") && len(arg) > 2
}

func parseFailover(sub string, rest []string, now time.Time, check bool) (Command, error) {
	cmd := Command{Sub: sub, Intent: IntentLatest, Check: check}
	exceptSet := false
	var (
		positional       []string
		intentOpt        string // the option that set the intent, for conflict messages
		reasonSet        bool
		afterReason      bool // the previous token was the reason value: a stray word likely belongs to it
		strayAfterReason string
	)
	for i := 0; i < len(rest); i++ {
		arg := normaliseDashes(rest[i])
		if !isOption(arg) {
			if arg == "-" || (strings.HasPrefix(arg, "-") && !strings.HasPrefix(arg, "--") && len(arg) > 1 && isLetter(arg[1])) {
				return Command{}, usageErr(sub, "Unknown option %q: options start with two dashes, e.g. --reason.", truncate(arg, 40))
			}
			if afterReason && strayAfterReason == "" {
				strayAfterReason = arg
			}
			afterReason = false
			positional = append(positional, arg)
			continue
		}
		afterReason = false
		name, value, hasValue := strings.Cut(arg, "=")
		name = strings.ToLower(name)
		switch name {
		case optLatest, optLatestVSS, optPointInTime, optInterval, optReason:
		case optExcept:
			if sub != SubReplica {
				return Command{}, usageErr(sub, "--except belongs to `replica`: with `%s`, list just the targets you want.", sub)
			}
		default:
			return Command{}, usageErr(sub, "Unknown option %q: use --latest, --latest-vss, --point-in-time, --interval or --reason.", truncate(name, 40))
		}
		takesValue := name == optPointInTime || name == optInterval || name == optReason || name == optExcept
		if !takesValue && hasValue {
			return Command{}, usageErr(sub, "%s takes no value, but got %q.", name, truncate(value, 40))
		}
		if takesValue && !hasValue {
			if i+1 >= len(rest) || isOption(normaliseDashes(rest[i+1])) {
				return Command{}, usageErr(sub, "%s needs a value: %s.", name, valueHint(name))
			}
			i++
			value = rest[i]
			// An unquoted "2024-05-01 13:45" arrives as two words; join them.
			if name != optReason && dateOnly.MatchString(value) && i+1 < len(rest) && timeOnly.MatchString(rest[i+1]) {
				i++
				value += "T" + rest[i]
			}
		}
		if name == optExcept {
			if exceptSet {
				return Command{}, usageErr(sub, "--except is given twice: list every VM to leave out once, separated by commas.")
			}
			exceptSet = true
			for _, v := range strings.Split(value, ",") {
				if v = strings.TrimSpace(v); v != "" && !slices.Contains(cmd.Except, v) {
					cmd.Except = append(cmd.Except, v)
				}
			}
			if len(cmd.Except) == 0 {
				return Command{}, usageErr(sub, "--except is empty: name the VMs to leave out, e.g. --except web03,web04.")
			}
			continue
		}
		if name == optReason {
			if reasonSet {
				return Command{}, usageErr(sub, "--reason is given twice: give it once, in quotes.")
			}
			reasonSet = true
			cmd.Reason = value
			afterReason = true
			continue
		}
		if intentOpt != "" {
			if intentOpt == name {
				return Command{}, usageErr(sub, "%s is given twice: give one restore-point option.", name)
			}
			return Command{}, usageErr(sub, "%s and %s conflict: give at most one restore-point option.", intentOpt, name)
		}
		intentOpt = name
		cmd.Intent, cmd.IntentSet = intentOptions[name], true
		if takesValue {
			t, err := parseRestoreTime(name, value, now)
			if err != nil {
				return Command{}, usageErr(sub, "%s", err.Error())
			}
			cmd.Time = t
		}
	}

	if strayAfterReason != "" {
		return Command{}, usageErr(sub, "Unexpected %q after the reason: put a reason of several words in quotes, e.g. --reason \"%s %s\".",
			truncate(strayAfterReason, 40), truncate(cmd.Reason, 40), truncate(strayAfterReason, 40))
	}
	names := []string{"<replica>", "<vm>"}
	switch sub {
	case SubVApp:
		names = []string{"<vapp>"}
	case SubReplica:
		names = []string{"<replica>"}
		if len(positional) > 1 {
			return Command{}, usageErr(sub, "Unexpected %s: `replica` takes one <replica> (quote names that contain spaces); use `vm <replica> <vm> …` to pick VMs.", quoteList(positional[1:]))
		}
	case SubPlan:
		names = []string{"<name>"}
		if len(positional) > 1 {
			return Command{}, usageErr(sub, "Unexpected %s: `plan` takes one plan name; `/failover plans` lists them.", quoteList(positional[1:]))
		}
	}
	if len(positional) < len(names) {
		return Command{}, usageErr(sub, "Missing %s: `%s` needs %s.", strings.Join(names[len(positional):], " and "), sub, strings.Join(names, " and "))
	}
	for i, p := range positional {
		if strings.TrimSpace(p) == "" {
			return Command{}, usageErr(sub, "%s is empty: give a GUID or a name.", names[min(i, len(names)-1)])
		}
	}
	uniq := func(in []string) []string {
		var out []string
		for _, v := range in {
			if !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, v) }) {
				out = append(out, v)
			}
		}
		return out
	}
	switch sub {
	case SubVM:
		cmd.Replica, cmd.VMs = positional[0], uniq(positional[1:])
		cmd.VM = cmd.VMs[0]
	case SubVApp:
		cmd.VApps = uniq(positional)
		cmd.VApp = cmd.VApps[0]
	case SubReplica:
		cmd.Replica = positional[0]
	case SubPlan:
		cmd.Plan = positional[0]
	}

	if !reasonSet && check {
		return cmd, nil
	}
	if !reasonSet {
		return Command{}, usageErr(sub, "--reason is required: say why this failover is needed, e.g. --reason \"site A lost power\".")
	}
	cmd.Reason = strings.TrimSpace(cmd.Reason)
	if cmd.Reason == "" {
		return Command{}, usageErr(sub, "--reason is blank: say why this failover is needed.")
	}
	if n := utf8.RuneCountInString(cmd.Reason); n > MaxReasonLen {
		return Command{}, usageErr(sub, "--reason is %d characters long; keep it to %d.", n, MaxReasonLen)
	}
	return cmd, nil
}

func isLetter(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }

func valueHint(name string) string {
	if name == optReason {
		return `say why, in quotes, e.g. --reason "site A lost power"`
	}
	return "give a time such as 2024-05-01T13:45:00Z"
}

var (
	dateOnly = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	timeOnly = regexp.MustCompile(`^\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$`)
)

// restoreTimeLayouts are the accepted forms of <time> after a space between date and time
// has become "T" and letters were upper-cased: RFC 3339 with optional seconds and optional
// offset. time.Parse also accepts fractional seconds after the seconds field.
var restoreTimeLayouts = []struct {
	layout    string
	hasOffset bool
}{
	{"2006-01-02T15:04:05Z07:00", true},
	{"2006-01-02T15:04Z07:00", true},
	{"2006-01-02T15:04:05", false},
	{"2006-01-02T15:04", false},
}

// earliestRestoreTime guards against typos such as 0224 for 2024 (and the zero time, which
// the store reads as "no time").
var earliestRestoreTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func parseRestoreTime(opt, value string, now time.Time) (time.Time, error) {
	s := strings.ToUpper(strings.TrimSpace(value))
	if len(s) > 10 && s[10] == ' ' {
		s = s[:10] + "T" + strings.TrimSpace(s[11:])
	}
	// A numeric offset without a colon (+0200) is common outside RFC 3339; accept it.
	if m := compactOffset.FindStringSubmatchIndex(s); m != nil {
		s = s[:m[2]] + s[m[2]:m[2]+3] + ":" + s[m[2]+3:]
	}
	for _, l := range restoreTimeLayouts {
		var (
			t   time.Time
			err error
		)
		if l.hasOffset {
			t, err = time.Parse(l.layout, s)
		} else {
			t, err = time.ParseInLocation(l.layout, s, time.UTC)
		}
		if err != nil {
			continue
		}
		t = t.UTC()
		switch {
		case t.Before(earliestRestoreTime):
			return time.Time{}, fmt.Errorf("%s %s is before 2000: check the date.", opt, truncate(value, 40))
		case t.After(now.Add(futureSlack)):
			return time.Time{}, fmt.Errorf("%s %s is in the future (it is now %s UTC): a restore point must be in the past.",
				opt, t.Format("2006-01-02 15:04:05")+" UTC", now.UTC().Format("2006-01-02 15:04"))
		}
		return t, nil
	}
	if dateOnly.MatchString(s) {
		return time.Time{}, fmt.Errorf("%s %s has no time of day: give date and time, e.g. %sT13:45:00Z.", opt, value, value)
	}
	return time.Time{}, fmt.Errorf("%s %q is not a time I understand: use RFC 3339, e.g. 2024-05-01T13:45:00Z or \"2024-05-01 15:45+02:00\" (no offset means UTC).",
		opt, truncate(value, 40))
}

var compactOffset = regexp.MustCompile(`T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?([+-]\d{4})$`)

func quoteList(args []string) string {
	const max = 3
	q := make([]string, 0, max+1)
	for i, a := range args {
		if i == max {
			q = append(q, fmt.Sprintf("and %d more", len(args)-max))
			break
		}
		q = append(q, strconv.Quote(truncate(a, 40)))
	}
	return strings.Join(q, ", ")
}

// truncate shortens user input echoed in messages so a pasted essay cannot blow past
// Slack's message limits.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}
