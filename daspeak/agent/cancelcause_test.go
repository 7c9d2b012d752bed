package agent

import (
	"strings"
	"testing"
)

// TestWidgetKnowsCancelCauses: every cause an operation is cancelled with
// other than a stop (its error-cancelled error, "cancelled: " and the
// cause) is one the widget says in the agent's words (CANCEL_CAUSES in
// web/voicegate-agent.js), so that such an end is never shown as the
// agent's own stop.
func TestWidgetKnowsCancelCauses(t *testing.T) {
	causes := []string{errReplaced.Error(), errDeleted.Error(), errShutdown.Error(), "the node running the operation stopped"}
	js := string(widgetJS)
	start := strings.Index(js, "const CANCEL_CAUSES = {")
	if start < 0 {
		t.Fatal("the widget has no CANCEL_CAUSES")
	}
	table := js[start:]
	table = table[:strings.Index(table, "};")]
	for _, c := range causes {
		if !strings.Contains(table, `'`+c+`'`) && !strings.Contains(table, `"`+c+`"`) &&
			!(c == errDeleted.Error() && strings.Contains(js, `const DELETED = "`+c+`";`) && strings.Contains(table, "[DELETED]")) {
			t.Errorf("the widget does not say cancel cause %q", c)
		}
	}
}
