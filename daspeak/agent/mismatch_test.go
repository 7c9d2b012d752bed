package agent

import (
	"strings"
	"testing"
)

// TestWidgetKnowsCallerMismatch: the widget names a caller id that is not
// the call's caller by the message the server sends for it.
func TestWidgetKnowsCallerMismatch(t *testing.T) {
	if want := "const CALLER_MISMATCH = '" + msgCallerMismatch + "';"; !strings.Contains(string(WidgetJS()), want) {
		t.Errorf("voicegate-agent.js lacks %q", want)
	}
}
