package bot

import (
	"testing"
	"time"
)

// SetCardWait shortens how long a click waits for its card's ts to be recorded, for the test.
func SetCardWait(t testing.TB, d time.Duration) {
	t.Helper()
	old := cardWait
	cardWait = d
	t.Cleanup(func() { cardWait = old })
}
