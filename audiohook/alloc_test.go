package audiohook

import (
	"context"
	"testing"

	"github.com/voicegate/voicegate"
)

func TestHandleAudioZeroAlloc(t *testing.T) {
	s := newSession(nil, (&ServerOptions{}).withDefaults(), newUUID(), tOrg, newUUID(), "")
	s.setState(stateActive)
	s.m.frameB = 2
	s.m.tmpl = voicegate.Frame{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 2}
	s.m.track.StartAt(0)
	frame := make([]byte, 320)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		s.handleAudio(frame)
		if _, err := s.ReadFrame(ctx); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per binary frame", allocs)
	}
}
