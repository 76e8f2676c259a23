package core

import (
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

var parseNow = time.Date(2024, 5, 1, 14, 0, 0, 0, time.UTC)

func TestParseCommandAccepts(t *testing.T) {
	pit := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v.UTC()
	}
	tests := []struct {
		name string
		text string
		want Command
	}{
		{"empty text is help", "", Command{Sub: SubHelp}},
		{"blank text is help", "   \t ", Command{Sub: SubHelp}},
		{"help", "help", Command{Sub: SubHelp}},
		{"help with topic", "help vm", Command{Sub: SubHelp}},
		{"help upper case", "HELP", Command{Sub: SubHelp}},
		{"list", "list", Command{Sub: SubList}},
		{"list mixed case", "List", Command{Sub: SubList}},
		{"status canonical", "status FO-12", Command{Sub: SubStatus, RequestID: "FO-12"}},
		{"status lower case", "status fo-12", Command{Sub: SubStatus, RequestID: "FO-12"}},
		{"status bare number", "status 12", Command{Sub: SubStatus, RequestID: "FO-12"}},
		{"status no dash", "status FO12", Command{Sub: SubStatus, RequestID: "FO-12"}},
		{"status hash", "status #7", Command{Sub: SubStatus, RequestID: "FO-7"}},
		{"status leading zeros", "status FO-007", Command{Sub: SubStatus, RequestID: "FO-7"}},
		{"cancel", "CANCEL fo-3", Command{Sub: SubCancel, RequestID: "FO-3"}},
		{"vm several", `vm rep1 web01 web02 "web 03" --reason x`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", VMs: []string{"web01", "web02", "web 03"}, Intent: IntentLatest, Reason: "x"}},
		{"vm repeats dropped", `vm rep1 web01 WEB01 web02 --reason x`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", VMs: []string{"web01", "web02"}, Intent: IntentLatest, Reason: "x"}},
		{"vapp several", `vapp erp crm --reason x`,
			Command{Sub: SubVApp, VApp: "erp", VApps: []string{"erp", "crm"}, Intent: IntentLatest, Reason: "x"}},
		{"replica", `replica CDP-Web --reason x`, Command{Sub: SubReplica, Replica: "CDP-Web", Intent: IntentLatest, Reason: "x"}},
		{"replica except", `replica CDP-Web --except web03,web04 --latest-vss --reason x`,
			Command{Sub: SubReplica, Replica: "CDP-Web", Except: []string{"web03", "web04"}, Intent: IntentLatestVSS, Reason: "x"}},
		{"replica except spaced and repeated", `replica CDP-Web --except "web03, web04,web03" --reason x`,
			Command{Sub: SubReplica, Replica: "CDP-Web", Except: []string{"web03", "web04"}, Intent: IntentLatest, Reason: "x"}},
		{"check replica without reason", `check replica CDP-Web`, Command{Sub: SubReplica, Replica: "CDP-Web", Intent: IntentLatest, Check: true}},
		{"check vm with reason", `check vm rep1 web01 --reason x`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", Intent: IntentLatest, Reason: "x", Check: true}},
		{"vm default latest", `vm rep1 web01 --reason "site down"`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", Intent: IntentLatest, Reason: "site down"}},
		{"vm explicit latest", `vm rep1 web01 --latest --reason x`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", Intent: IntentLatest, Reason: "x"}},
		{"vm latest-vss", `vm rep1 web01 --latest-vss --reason x`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", Intent: IntentLatestVSS, Reason: "x"}},
		{"vm point in time Z", `vm rep1 web01 --point-in-time 2024-05-01T13:45:00Z --reason x`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", Intent: IntentPointInTime, Time: pit("2024-05-01T13:45:00Z"), Reason: "x"}},
		{"vm point in time offset converted to UTC", `vm rep1 web01 --point-in-time 2024-05-01T15:45:00+02:00 --reason x`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", Intent: IntentPointInTime, Time: pit("2024-05-01T13:45:00Z"), Reason: "x"}},
		{"vm point in time no offset is UTC", `vm rep1 web01 --point-in-time 2024-05-01T13:45:00 --reason x`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", Intent: IntentPointInTime, Time: pit("2024-05-01T13:45:00Z"), Reason: "x"}},
		{"vm point in time without seconds", `vm rep1 web01 --point-in-time 2024-05-01T13:45 --reason x`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", Intent: IntentPointInTime, Time: pit("2024-05-01T13:45:00Z"), Reason: "x"}},
		{"vm point in time quoted space", `vm rep1 web01 --point-in-time "2024-05-01 15:45+02:00" --reason x`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", Intent: IntentPointInTime, Time: pit("2024-05-01T13:45:00Z"), Reason: "x"}},
		{"vm point in time unquoted space", `vm rep1 web01 --point-in-time 2024-05-01 13:45 --reason x`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", Intent: IntentPointInTime, Time: pit("2024-05-01T13:45:00Z"), Reason: "x"}},
		{"vm point in time lower case t and z", `vm rep1 web01 --point-in-time 2024-05-01t13:45:00z --reason x`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", Intent: IntentPointInTime, Time: pit("2024-05-01T13:45:00Z"), Reason: "x"}},
		{"vm point in time compact offset", `vm rep1 web01 --point-in-time 2024-05-01T09:45-0400 --reason x`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", Intent: IntentPointInTime, Time: pit("2024-05-01T13:45:00Z"), Reason: "x"}},
		{"vm point in time fractional seconds", `vm rep1 web01 --point-in-time 2024-05-01T13:45:00.250Z --reason x`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", Intent: IntentPointInTime, Time: pit("2024-05-01T13:45:00.25Z"), Reason: "x"}},
		{"vm point in time equals form", `vm rep1 web01 --point-in-time=2024-05-01T13:45:00Z --reason x`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", Intent: IntentPointInTime, Time: pit("2024-05-01T13:45:00Z"), Reason: "x"}},
		{"vm time within a minute of now is accepted", `vm rep1 web01 --point-in-time 2024-05-01T14:00:59Z --reason x`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", Intent: IntentPointInTime, Time: pit("2024-05-01T14:00:59Z"), Reason: "x"}},
		{"vm interval", `vm rep1 web01 --interval 2024-05-01T10:00:00Z --reason x`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", Intent: IntentInterval, Time: pit("2024-05-01T10:00:00Z"), Reason: "x"}},
		{"vm reason equals form", `vm rep1 web01 --reason=flood`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", Intent: IntentLatest, Reason: "flood"}},
		{"vm reason equals quoted", `vm rep1 web01 --reason="site A flooded"`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", Intent: IntentLatest, Reason: "site A flooded"}},
		{"vm options before names", `vm --reason "x y" --latest-vss rep1 web01`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", Intent: IntentLatestVSS, Reason: "x y"}},
		{"vm quoted names with spaces", `vm "CDP Replica 1" 'web 01' --reason x`,
			Command{Sub: SubVM, Replica: "CDP Replica 1", VM: "web 01", Intent: IntentLatest, Reason: "x"}},
		{"vm typographic double quotes", `vm rep1 web01 --reason “site A lost power”`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", Intent: IntentLatest, Reason: "site A lost power"}},
		{"vm typographic single quotes", `vm ‘CDP Replica 1’ web01 --reason ‘power cut’`,
			Command{Sub: SubVM, Replica: "CDP Replica 1", VM: "web01", Intent: IntentLatest, Reason: "power cut"}},
		{"vm guillemets", `vm rep1 web01 --reason «power cut»`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", Intent: IntentLatest, Reason: "power cut"}},
		{"typographic apostrophe inside a word is kept", `vm rep1 web01 --reason “don’t wait”`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", Intent: IntentLatest, Reason: "don’t wait"}},
		{"straight apostrophe inside double quotes", `vm rep1 web01 --reason "don't wait"`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", Intent: IntentLatest, Reason: "don't wait"}},
		{"em dash for double dash", `vm rep1 web01 —reason x —latest-vss`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", Intent: IntentLatestVSS, Reason: "x"}},
		{"option names are case-insensitive", `VM rep1 web01 --Reason x --LATEST-VSS`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", Intent: IntentLatestVSS, Reason: "x"}},
		{"shell metacharacters are text", `vm rep1 web01 --reason fix(urgent);A&amp;B|c&lt;d&gt;$HOME`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", Intent: IntentLatest, Reason: "fix(urgent);A&B|c<d>$HOME"}},
		{"no-break spaces split words", "vm\u00a0rep1\u00a0web01 --reason x",
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", Intent: IntentLatest, Reason: "x"}},
		{"reason is trimmed", `vm rep1 web01 --reason "  x  "`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", Intent: IntentLatest, Reason: "x"}},
		{"reason of 500 characters", `vm rep1 web01 --reason "` + strings.Repeat("é", 500) + `"`,
			Command{Sub: SubVM, Replica: "rep1", VM: "web01", Intent: IntentLatest, Reason: strings.Repeat("é", 500)}},
		{"guid names", `vm 3f1c1c1e-1234-4cde-9abc-0123456789ab 0a1b2c3d-1234-4cde-9abc-0123456789ab --reason x`,
			Command{Sub: SubVM, Replica: "3f1c1c1e-1234-4cde-9abc-0123456789ab", VM: "0a1b2c3d-1234-4cde-9abc-0123456789ab", Intent: IntentLatest, Reason: "x"}},
		{"vapp", `vapp "Finance app" --latest-vss --reason "DR test"`,
			Command{Sub: SubVApp, VApp: "Finance app", Intent: IntentLatestVSS, Reason: "DR test"}},
		{"vapp point in time", `vapp fin --point-in-time 2024-05-01T13:00Z --reason x`,
			Command{Sub: SubVApp, VApp: "fin", Intent: IntentPointInTime, Time: pit("2024-05-01T13:00:00Z"), Reason: "x"}},
		{"plans", "plans", Command{Sub: SubPlans}},
		{"plan, its own restore option", `plan site-b --reason "site A is down"`, Command{Sub: SubPlan, Plan: "site-b", Intent: IntentLatest, Reason: "site A is down"}},
		{"plan, latest typed", `plan site-b --latest --reason x`, Command{Sub: SubPlan, Plan: "site-b", Intent: IntentLatest, Reason: "x"}},
		{"plan, VSS", `PLAN "site b" --latest-vss --reason x`, Command{Sub: SubPlan, Plan: "site b", Intent: IntentLatestVSS, Reason: "x"}},
		{"check plan", `check plan site-b`, Command{Sub: SubPlan, Plan: "site-b", Check: true, Intent: IntentLatest}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCommand(tt.text, parseNow)
			if err != nil {
				t.Fatalf("ParseCommand(%q) error: %v", tt.text, err)
			}
			if !got.Time.Equal(tt.want.Time) || got.Time.Location() != time.UTC {
				t.Errorf("Time = %v (%v), want %v UTC", got.Time, got.Time.Location(), tt.want.Time)
			}
			got.Time, tt.want.Time = time.Time{}, time.Time{}
			if tt.want.VMs == nil && tt.want.VM != "" {
				tt.want.VMs = []string{tt.want.VM}
			}
			if tt.want.VApps == nil && tt.want.VApp != "" {
				tt.want.VApps = []string{tt.want.VApp}
			}
			tt.want.IntentSet = intentTyped.MatchString(tt.text)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseCommand(%q)\n got %+v\nwant %+v", tt.text, got, tt.want)
			}
		})
	}
}

// intentTyped matches a command that types a restore-point option.
var intentTyped = regexp.MustCompile(`(?i)(--|—|–)(latest|point-in-time|interval)`)

func TestParseCommandRejects(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		msgHas   []string // every substring must appear in Msg
		usageHas string   // Usage must contain this
	}{
		{"unknown subcommand", "failover web01", []string{`"failover"`, "vm, vapp"}, usageVApp},
		{"unknown subcommand shows whole help", "restart", []string{"Unknown subcommand"}, usageCancel},
		{"unbalanced double quote", `vm rep1 web01 --reason "site down`, []string{"unbalanced quote"}, usageVM},
		{"unbalanced typographic quote", `vm rep1 web01 --reason “site down`, []string{"unbalanced quote"}, usageVM},
		{"unquoted apostrophe", `vm rep1 web01 --reason don't`, []string{"unbalanced quote"}, usageVM},
		{"trailing backslash", `vm rep1 web01 --reason x \`, []string{"backslash"}, usageVM},
		{"list with argument", "list all", []string{"takes no arguments", `"all"`}, usageList},
		{"status without id", "status", []string{"needs a request ID"}, usageStatus},
		{"status with two ids", "status FO-1 FO-2", []string{"one request ID", `"FO-2"`}, usageStatus},
		{"status bad id", "status web01", []string{`"web01" is not a request ID`}, usageStatus},
		{"status zero id", "status FO-0", []string{"not a request ID"}, usageStatus},
		{"status id too large", "status 99999999999999999999", []string{"not a request ID"}, usageStatus},
		{"cancel without id", "cancel", []string{"needs a request ID"}, usageCancel},
		{"vm missing reason", "vm rep1 web01", []string{"--reason is required"}, usageVM},
		{"vm blank reason", `vm rep1 web01 --reason "   "`, []string{"--reason is blank"}, usageVM},
		{"vm empty reason equals", `vm rep1 web01 --reason=`, []string{"--reason is blank"}, usageVM},
		{"vm reason too long", `vm rep1 web01 --reason "` + strings.Repeat("x", 501) + `"`, []string{"501 characters", "500"}, usageVM},
		{"vm reason twice", `vm rep1 web01 --reason a --reason b`, []string{"--reason is given twice"}, usageVM},
		{"vm reason without value", `vm rep1 web01 --reason`, []string{"--reason needs a value"}, usageVM},
		{"vm reason followed by option", `vm rep1 web01 --reason --latest`, []string{"--reason needs a value"}, usageVM},
		{"vm unquoted multiword reason", `vm rep1 web01 --reason site down`, []string{`Unexpected "down"`, `--reason "site down"`}, usageVM},
		{"vm missing vm", `vm rep1 --reason x`, []string{"Missing <vm>"}, usageVM},
		{"vm missing both", `vm --reason x`, []string{"Missing <replica> and <vm>"}, usageVM},
		{"replica extra positional", `replica CDP-Web web01 --reason x`, []string{`Unexpected "web01"`}, usageRepl},
		{"vm empty name", `vm "" web01 --reason x`, []string{"<replica> is empty"}, usageVM},
		{"vm unknown option", `vm rep1 web01 --force --reason x`, []string{`Unknown option "--force"`}, usageVM},
		{"vm single dash option", `vm rep1 web01 -reason x`, []string{`Unknown option "-reason"`, "two dashes"}, usageVM},
		{"vm flag with value", `vm rep1 web01 --latest=yes --reason x`, []string{"--latest takes no value"}, usageVM},
		{"vm conflicting options", `vm rep1 web01 --latest --latest-vss --reason x`, []string{"--latest and --latest-vss conflict"}, usageVM},
		{"vm conflicting time options", `vm rep1 web01 --interval 2024-05-01T10:00Z --point-in-time 2024-05-01T10:00Z --reason x`,
			[]string{"--interval and --point-in-time conflict"}, usageVM},
		{"vm same option twice", `vm rep1 web01 --latest --latest --reason x`, []string{"--latest is given twice"}, usageVM},
		{"vm point in time without value", `vm rep1 web01 --reason x --point-in-time`, []string{"--point-in-time needs a value", "2024-05-01T13:45:00Z"}, usageVM},
		{"vm point in time followed by option", `vm rep1 web01 --point-in-time --reason x`, []string{"--point-in-time needs a value"}, usageVM},
		{"vm bad time", `vm rep1 web01 --point-in-time yesterday --reason x`, []string{`"yesterday" is not a time`, "RFC 3339"}, usageVM},
		{"vm date only", `vm rep1 web01 --point-in-time 2024-05-01 --reason x`, []string{"has no time of day"}, usageVM},
		{"vm impossible date", `vm rep1 web01 --point-in-time 2024-02-30T10:00Z --reason x`, []string{"is not a time"}, usageVM},
		{"vm future time", `vm rep1 web01 --point-in-time 2024-05-01T14:01:01Z --reason x`, []string{"is in the future", "2024-05-01 14:00 UTC"}, usageVM},
		{"vm future time via offset", `vm rep1 web01 --interval 2024-05-01T14:30:00-01:00 --reason x`, []string{"--interval", "in the future"}, usageVM},
		{"vm ancient time", `vm rep1 web01 --point-in-time 0224-05-01T10:00Z --reason x`, []string{"before 2000"}, usageVM},
		{"vapp missing name", `vapp --reason x`, []string{"Missing <vapp>"}, usageVApp},
		{"except outside replica", `vm rep1 web01 --except web02 --reason x`, []string{"--except belongs to `replica`"}, usageVM},
		{"check of status", `check status FO-1`, []string{"`check` checks vm, vapp, replica or plan"}, usageCheck},
		{"empty except", `replica CDP-Web --except , --reason x`, []string{"--except is empty"}, usageRepl},
		{"vapp conflicting options", `vapp fin --latest-vss --interval 2024-05-01T10:00Z --reason x`, []string{"--latest-vss and --interval conflict"}, usageVApp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCommand(tt.text, parseNow)
			if err == nil {
				t.Fatalf("ParseCommand(%q) = %+v, want an error", tt.text, got)
			}
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("error %T %v, want *UsageError", err, err)
			}
			for _, s := range tt.msgHas {
				if !strings.Contains(ue.Msg, s) {
					t.Errorf("Msg = %q, want it to contain %q", ue.Msg, s)
				}
			}
			if !strings.Contains(ue.Usage, tt.usageHas) {
				t.Errorf("Usage = %q, want it to contain %q", ue.Usage, tt.usageHas)
			}
			if ue.Error() != ue.Msg {
				t.Errorf("Error() = %q, want Msg %q", ue.Error(), ue.Msg)
			}
			if !strings.HasSuffix(ue.Msg, ".") {
				t.Errorf("Msg = %q, want a complete sentence ending with a period", ue.Msg)
			}
		})
	}
}

func TestUsageErrorEchoIsBounded(t *testing.T) {
	long := strings.Repeat("A", 5000)
	_, err := ParseCommand(long, parseNow)
	if err == nil {
		t.Fatal("want an error")
	}
	if n := len(err.Error()); n > 400 {
		t.Errorf("message is %d bytes long; user input must be truncated", n)
	}
}

func TestHelpTextListsEverySubcommand(t *testing.T) {
	h := HelpText()
	for _, sub := range []string{SubVM, SubVApp, SubStatus, SubList, SubCancel, SubHelp} {
		if !strings.Contains(h, Usage(sub)) {
			t.Errorf("HelpText lacks the usage of %q: %q", sub, Usage(sub))
		}
	}
	if len(h) > 3000 {
		t.Errorf("HelpText is %d bytes; Slack rejects section text over 3000", len(h))
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"", "help", "list", "status FO-1", "cancel 3",
		"list --recent", "list --recent 2d", "list --recent=1.5d", "list —recent 90m", "list 2d", "list --recent 1e300d",
		`vm rep1 web01 --reason "x"`,
		`vm "CDP Replica 1" web01 --point-in-time 2024-05-01T13:45:00Z --reason “why”`,
		`vapp fin --interval "2024-05-01 13:45+02:00" --reason=x`,
		`vm a b --latest --latest-vss`, `vm a b —reason ‘x’ c`, `vm a b --point-in-time 2024-05-01 13:45 --reason x`,
		"vm a b --reason \"\\", "status #0", "\u00a0vm\u2003a b --reason x", "vm a b --reason \xff\xfe",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		cmd, err := ParseCommand(text, parseNow)
		if err != nil {
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("ParseCommand(%q) error %T, want *UsageError", text, err)
			}
			if strings.TrimSpace(ue.Msg) == "" || strings.TrimSpace(ue.Usage) == "" {
				t.Fatalf("ParseCommand(%q) UsageError with empty Msg %q or Usage %q", text, ue.Msg, ue.Usage)
			}
			return
		}
		switch cmd.Sub {
		case SubHelp:
		case SubList:
			if cmd.Recent < 0 || cmd.Recent > MaxRecent {
				t.Fatalf("ParseCommand(%q) accepted the period %v, outside (0, %v]", text, cmd.Recent, MaxRecent)
			}
		case SubStatus, SubCancel:
			if _, ok := NormaliseRequestID(cmd.RequestID); !ok || !strings.HasPrefix(cmd.RequestID, "FO-") {
				t.Fatalf("ParseCommand(%q) RequestID %q not normalised", text, cmd.RequestID)
			}
		case SubVM, SubVApp:
			if strings.TrimSpace(cmd.Reason) == "" {
				t.Fatalf("ParseCommand(%q) accepted a blank reason", text)
			}
			if (cmd.Intent == IntentPointInTime || cmd.Intent == IntentInterval) != !cmd.Time.IsZero() {
				t.Fatalf("ParseCommand(%q) intent %q with time %v", text, cmd.Intent, cmd.Time)
			}
			if cmd.Time.After(parseNow.Add(time.Minute)) {
				t.Fatalf("ParseCommand(%q) accepted future time %v", text, cmd.Time)
			}
		default:
			t.Fatalf("ParseCommand(%q) returned unknown Sub %q", text, cmd.Sub)
		}
	})
}
