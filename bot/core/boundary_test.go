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
			if strings.Contains(imp, banned) && imp != "github.com/failover-bot/failover-bot/bot/core" {
				t.Errorf("package core imports %s; the use cases must not depend on %s", imp, banned)
			}
		}
	}
}
