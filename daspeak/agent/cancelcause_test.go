package agent

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestWidgetKnowsCancelCauses: every cause an operation is cancelled with
// other than a stop (the cause of its error-cancelled event) is one the
// widget says in the agent's words (CANCEL_CAUSES in
// web/voicegate-agent.js, keyed by the cause code), so that such an end
// is never shown as the agent's own stop; and the widget does not read
// the English error to tell causes apart.
func TestWidgetKnowsCancelCauses(t *testing.T) {
	js := string(widgetJS)
	start := strings.Index(js, "const CANCEL_CAUSES = {")
	if start < 0 {
		t.Fatal("the widget has no CANCEL_CAUSES")
	}
	table := js[start:]
	table = table[:strings.Index(table, "};")]
	for _, c := range CancelCauses {
		has := strings.Contains(table, "\n    "+string(c)+": ")
		if has != (c != CauseStopped) {
			t.Errorf("cause %q in the widget's CANCEL_CAUSES: %v", c, has)
		}
	}
	for _, err := range []error{errReplaced, errDeleted, errShutdown} {
		if strings.Contains(js, err.Error()) {
			t.Errorf("the widget matches the English text %q", err.Error())
		}
	}
}

// TestCancelCauseField: error-cancelled carries its cause's code, the
// one of the error it was cancelled with; other events carry none.
func TestCancelCauseField(t *testing.T) {
	for _, c := range []struct {
		err  error
		want CancelCause
	}{
		{errStopped, CauseStopped},
		{errReplaced, CauseReplaced},
		{errDeleted, CauseDeleted},
		{errShutdown, CauseShutdown},
		{context.Canceled, CauseShutdown},
		{errors.New("something else"), CauseShutdown},
	} {
		if got := causeOf(c.err); got != c.want {
			t.Errorf("causeOf(%v) = %q, want %q", c.err, got, c.want)
		}
	}
	b, err := json.Marshal(Event{Type: EventErrorCancelled, Reason: ReasonCancelled, Error: "cancelled: " + errDeleted.Error(), Cause: CauseDeleted})
	if err != nil || !strings.Contains(string(b), `"cause":"deleted"`) {
		t.Fatalf("error-cancelled JSON %s %v: want \"cause\":\"deleted\"", b, err)
	}
	b, _ = json.Marshal(Event{Type: "progress"})
	if strings.Contains(string(b), `"cause"`) {
		t.Fatalf("progress JSON %s has a cause", b)
	}
}
