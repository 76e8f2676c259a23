package core

import (
	"context"
)

// Several instances may share one store (STORE=etcd): each records what people ask (requests,
// approvals, rejections, plan decisions) whichever instance Slack reaches, but only the leader
// talks to EM about failovers (submits, follows, stops), expires and reminds. An instance that
// does not lead hands what it cannot do to the leader as a Job (Options.Forward); the leader
// runs it (RunJob). With one instance (Options.Leader nil) every instance leads.

// Job is work a standby hands to the leader.
type Job struct {
	Kind    string `json:"kind"`
	ID      string `json:"id,omitempty"`
	User    string `json:"user,omitempty"`
	Channel string `json:"channel,omitempty"`
	Trigger string `json:"trigger,omitempty"`
	Task    string `json:"task,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// Job kinds.
const (
	// JobPoll asks for a poll cycle now: something a standby recorded (an approval, a plan's
	// go-ahead) is the leader's to send.
	JobPoll = "poll"
	// JobOpenStop opens the stop dialog (the leader's EM logon session owns the tasks, so only
	// it can tell what can be stopped).
	JobOpenStop = "open-stop"
	// JobStop is a confirmed stop dialog.
	JobStop = "stop"
)

// Leads reports whether this instance does the leader's work now (delivery to Slack asks too).
func (b *Service) Leads() bool { return b.leads() }

// leads reports whether this instance does the leader's work now.
func (b *Service) leads() bool {
	if b.opt.Leader == nil {
		return true
	}
	_, ok := b.opt.Leader()
	return ok
}

// termCtx returns ctx ended also when this instance's leadership ends, the term (nil with one
// instance), and whether it leads.
func (b *Service) termCtx(ctx context.Context) (context.Context, context.Context, context.CancelFunc, bool) {
	if b.opt.Leader == nil {
		return ctx, nil, func() {}, true
	}
	term, ok := b.opt.Leader()
	if !ok {
		return ctx, nil, func() {}, false
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(term, cancel)
	return ctx, term, func() { stop(); cancel() }, true
}

// handOver forwards j to the leader. tell, when set, hears if that failed.
func (b *Service) handOver(ctx context.Context, j Job, tell func(string)) {
	if b.opt.Forward == nil {
		return
	}
	log := b.log.With("job", j.Kind, "request", j.ID)
	if err := b.opt.Forward(ctx, j); err != nil {
		log.Error("handing work to the leading instance failed", "error", err)
		if tell != nil {
			tell("I could not hand this to the instance that talks to Enterprise Manager (" + describe(err) + "). Nothing was done; try again.")
		}
		return
	}
	b.met.Forwarded.WithLabelValues(j.Kind).Inc()
	log.Info("handed to the leading instance")
}

// RunJob runs a job a standby handed over. Called on the leader.
func (b *Service) RunJob(ctx context.Context, j Job) {
	b.log.Info("running work handed over by another instance", "job", j.Kind, "request", j.ID, "user", j.User)
	switch j.Kind {
	case JobPoll:
		b.PollSoon()
	case JobOpenStop:
		b.openStop(ctx, j.ID, j.User, j.Channel, j.Trigger)
	case JobStop:
		b.requestStop(ctx, j.ID, j.Task, j.User, j.Reason)
	default:
		b.log.Warn("ignoring handed-over work of an unknown kind", "job", j.Kind)
	}
}
