package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/failover-bot/failover-bot/emapi"
)

// doctor checks a real Enterprise Manager with the bot's own settings, read-only: it logs on,
// reads the inventory, restore intervals of one VM and recent restore sessions, and compares EM's
// clock with ours. It never starts, stops or changes anything. One line per check; the exit code
// is non-zero when any check failed.

// maxClockSkew is how far EM's clock may be from ours before doctor fails: restore sessions are
// matched to submissions with two minutes of slack, and failover times are sent as UTC.
const maxClockSkew = time.Minute

type doctorCheck struct {
	name string
	ok   bool
	warn bool
	text string
}

func (d doctorCheck) String() string {
	mark := "ok  "
	switch {
	case !d.ok:
		mark = "FAIL"
	case d.warn:
		mark = "warn"
	}
	return fmt.Sprintf("%s %-15s %s", mark, d.name, d.text)
}

// runDoctor runs every check it can and writes one line per check to w. It returns the number
// of failed checks.
func runDoctor(ctx context.Context, cfg Config, vm string, w io.Writer, now func() time.Time) int {
	failed := 0
	say := func(c doctorCheck) {
		if !c.ok {
			failed++
		}
		fmt.Fprintln(w, c)
	}
	if cfg.EMURL == "" {
		say(doctorCheck{name: "config", text: "EM_URL is not set: nothing to check"})
		return failed
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	em, err := newEMClient(cfg, quiet, nil)
	if err != nil {
		say(doctorCheck{name: "config", text: oneLine(err.Error())})
		return failed
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = em.Close(cctx)
	}()
	say(doctorCheck{name: "config", ok: true, text: fmt.Sprintf("%s, %s bodies, point-in-time element <%s> (check it in RestAPI.xsd)",
		cfg.EMURL, cfg.EMFormat, cfg.EMPointInTimeElement)})

	// Clock first: it needs no logon, and a wrong clock explains odd results below.
	if t, err := em.ServerTime(ctx); err != nil {
		say(doctorCheck{name: "clock", text: "cannot read EM's clock: " + doctorErr(err)})
	} else {
		skew := t.Sub(now().UTC().Truncate(time.Second)) // Date has whole seconds
		c := doctorCheck{name: "clock", ok: true, text: fmt.Sprintf("EM's clock is %s (%s from ours)", t.Format(time.RFC3339), signed(skew))}
		if skew > maxClockSkew || skew < -maxClockSkew {
			c.ok = false
			c.text += fmt.Sprintf("; more than %s apart: failover times are sent as UTC and restore sessions are matched by time, so fix NTP on one side", maxClockSkew)
		}
		say(c)
	}

	sid, err := em.Logon(ctx)
	if err != nil {
		say(doctorCheck{name: "logon", text: doctorErr(err)})
		return failed
	}
	say(doctorCheck{name: "logon", ok: true, text: fmt.Sprintf("logged on as %s (logon session %s)", cfg.EMUsername, orNone(sid))})

	replicas, err := em.Replicas(ctx)
	switch {
	case emapi.KindOf(err) == emapi.KindForbidden:
		say(doctorCheck{name: "role", text: "EM answers 403 Access denied on /cdpReplicas: the account " + cfg.EMUsername + " lacks the Portal Administrator role, which every CDP call needs. Add the role in Enterprise Manager's configuration (Roles)."})
		return failed
	case err != nil:
		say(doctorCheck{name: "role", text: "cannot list CDP replicas: " + doctorErr(err)})
		return failed
	}
	say(doctorCheck{name: "role", ok: true, text: "the account can read CDP replicas (Portal Administrator)"})

	vms := 0
	var first struct{ replica, vm emapi.Ref }
	for _, r := range replicas {
		list, err := em.ReplicaVMs(ctx, r.ID)
		if err != nil {
			say(doctorCheck{name: "inventory", text: "cannot list the VMs of replica " + r.Name + ": " + doctorErr(err)})
			return failed
		}
		vms += len(list)
		if first.vm.ID == "" && len(list) > 0 {
			first.replica, first.vm = r, list[0]
		}
	}
	vapps, err := em.VApps(ctx)
	if err != nil {
		say(doctorCheck{name: "inventory", text: "cannot list vApp replicas: " + doctorErr(err)})
		return failed
	}
	inv := doctorCheck{name: "inventory", ok: true, text: fmt.Sprintf("%d CDP replicas, %d VMs, %d vApps", len(replicas), vms, len(vapps))}
	if vms == 0 && len(vapps) == 0 {
		inv.warn, inv.text = true, inv.text+": nothing to fail over with this account"
	}
	say(inv)

	if vm != "" {
		replicaName, vmName, ok := strings.Cut(vm, "/")
		if !ok {
			say(doctorCheck{name: "intervals", text: "--vm wants <replica>/<vm>, e.g. --vm \"CDP-Finance/fin-db01\""})
			return failed
		}
		rep, err := em.ResolveReplica(ctx, replicaName)
		if err == nil {
			first.replica = rep
			first.vm, err = em.ResolveVM(ctx, rep.ID, vmName)
		}
		if err != nil {
			say(doctorCheck{name: "intervals", text: doctorErr(err)})
			return failed
		}
	}
	if first.vm.ID != "" {
		to := now().UTC()
		in, err := em.VMIntervals(ctx, first.replica.ID, first.vm.ID, to.Add(-24*time.Hour), to)
		if err != nil {
			say(doctorCheck{name: "intervals", text: "cannot read restore intervals of " + first.vm.Name + ": " + doctorErr(err)})
		} else {
			newest := "no restore interval in the last 24 h"
			var end time.Time
			for _, iv := range in.Intervals {
				if iv.End.After(end) {
					end = iv.End
					newest = "the newest ends " + end.Format(time.RFC3339)
				}
			}
			c := doctorCheck{name: "intervals", ok: true, text: fmt.Sprintf("%s/%s: %d intervals, %d restore points; %s", first.replica.Name, first.vm.Name, len(in.Intervals), len(in.RestorePoints), newest)}
			if len(in.Intervals) == 0 {
				c.warn = true
			}
			say(c)
		}
	}

	sessions, err := em.QueryRestoreSessions(ctx, now().Add(-24*time.Hour), nil)
	if err != nil {
		say(doctorCheck{name: "restore query", text: "GET /query?type=RestoreSession failed: " + doctorErr(err) + "; the bot needs it to find a failover whose task was lost"})
	} else {
		say(doctorCheck{name: "restore query", ok: true, text: fmt.Sprintf("%d restore sessions in the last 24 h", len(sessions))})
	}
	return failed
}

func doctorErr(err error) string {
	var e *emapi.Error
	if errors.As(err, &e) && e.Kind == emapi.KindUnauthorized {
		return "EM refused the logon (401): check EM_USERNAME and EM_PASSWORD"
	}
	return oneLine(err.Error())
}

func signed(d time.Duration) string {
	d = d.Round(time.Second)
	if d >= 0 {
		return "+" + d.String()
	}
	return d.String()
}

func orNone(s string) string {
	if s == "" {
		return "not named"
	}
	return s
}

// parseDoctorFlags reads doctor's flags: --vm <replica>/<vm> and --timeout.
func parseDoctorFlags(args []string, stderr io.Writer) (vm string, timeout time.Duration, err error) {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&vm, "vm", "", "check restore intervals of this VM, as <replica>/<vm> (default: the first VM EM lists)")
	fs.DurationVar(&timeout, "timeout", 2*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return "", 0, err
	}
	if fs.NArg() > 0 {
		return "", 0, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return vm, timeout, nil
}
