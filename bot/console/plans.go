package console

import (
	_ "embed"

	"github.com/failover-bot/failover-bot/bot/plans"
)

// demoPlans is the console's example plans file for the simulator's demo site (emsim.DemoSite).
//
//go:embed demo-plans.yaml
var demoPlans []byte

// DemoPlansPath is the name DemoPlans gives the built-in file, in File.Path and in errors.
const DemoPlansPath = "demo-plans.yaml (built in)"

// DemoPlans parses the console's built-in recovery plans: site-b (databases, apps, web; in the
// console demo crm-db01 of databases fails, so the run halts for Continue or Stop run) and
// mail-only (the CDP-Mail replica). The console uses them when PLANS_FILE is unset.
func DemoPlans() (*plans.File, error) {
	return plans.Parse(DemoPlansPath, demoPlans)
}
