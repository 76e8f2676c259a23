package core

import (
	"go/build"
	"strings"
	"testing"
)

// TestUseCasesKnowNoSlack: the use cases import no Slack library, no HTTP server and no bbolt;
// they reach Slack only through the interfaces they define (Notifier, Dialogs, Directory).
func TestUseCasesKnowNoSlack(t *testing.T) {
	p, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range p.Imports {
		for _, banned := range []string{"slack-go", "net/http", "bbolt", "failover-bot/bot"} {
			// bot/plans is a leaf (the plans file's parser, importing nothing of the bot), not the edge.
			if strings.Contains(imp, banned) && imp != "github.com/failover-bot/failover-bot/bot/core" && imp != "github.com/failover-bot/failover-bot/bot/plans" {
				t.Errorf("package core imports %s; the use cases must not depend on %s", imp, banned)
			}
		}
	}
}

// TestPlansIsALeaf: the plans parser the use cases read imports nothing of the bot, so the
// exception above cannot become a back door to the edge.
func TestPlansIsALeaf(t *testing.T) {
	p, err := build.ImportDir("../plans", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range p.Imports {
		if strings.Contains(imp, "failover-bot/") || strings.Contains(imp, "slack-go") || strings.Contains(imp, "net/http") {
			t.Errorf("package plans imports %s; it must stay a leaf", imp)
		}
	}
}
