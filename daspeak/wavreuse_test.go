package daspeak_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"unsafe"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/internal/fixtures"
)

// lateEngine returns at once and goes on reading the audio afterwards, as
// an engine racing two endpoints or honouring ctx around a blocking call
// might. It is not a daspeak.AudioReleaser.
type lateEngine struct {
	mu      sync.Mutex
	reads   []func() bool // each reports whether its call's audio is unchanged
	storage map[unsafe.Pointer]bool
}

func (e *lateEngine) GenerateCredential(ctx context.Context, hash string, audio []byte, opts *daspeak.AudioOptions) (*daspeak.CredentialResult, error) {
	return nil, nil
}

func (e *lateEngine) CompareCredentialToAudio(ctx context.Context, cred string, audio []byte, opts *daspeak.AudioOptions) (*daspeak.CompareResult, error) {
	snap := bytes.Clone(audio)
	e.mu.Lock()
	e.reads = append(e.reads, func() bool { return bytes.Equal(snap, audio) })
	if e.storage == nil {
		e.storage = make(map[unsafe.Pointer]bool)
	}
	e.storage[unsafe.Pointer(unsafe.SliceData(audio))] = true
	e.mu.Unlock()
	return &daspeak.CompareResult{Model: daspeak.Model{Hash: "m1"}, Score: 0.9, Authenticity: 1, NetSpeechDuration: 4}, nil
}

type releasingEngine struct{ *lateEngine }

func (releasingEngine) ReleasesAudio() bool { return true }

// verifyEach runs n verify sessions one after the other on e.
func verifyEach(t *testing.T, e daspeak.Engine, n int) {
	t.Helper()
	utt := fixtures.Utterances("kal")
	for i := range n {
		fs := frames(t, utt[i%2], voicegate.PCMU, 1, 0, [2]voicegate.Party{})
		s, _ := daspeak.Verify(voicegate.NewSliceReader(fs), e, "cred", &daspeak.Config{ModelHash: "m1"})
		if ev, _ := run(t, s); ev.Type != daspeak.EventResultSuccess {
			t.Fatalf("verify %d: %s %v", i, ev.Type, ev.Err)
		}
	}
}

// An Engine that does not say it is done with the audio when a call
// returns (daspeak.AudioReleaser) gets a WAV file of its own for every
// call: what it reads after returning is still its caller's voice, never a
// later session's.
func TestSessionWAVLateReader(t *testing.T) {
	e := &lateEngine{}
	verifyEach(t, e, 6)
	for i, unchanged := range e.reads {
		if !unchanged() {
			t.Errorf("call %d: its audio was replaced by a later session's after the call returned", i)
		}
	}
}

// An AudioReleaser's verify sessions reuse WAV buffers from call to call.
func TestSessionWAVReusedForAudioReleaser(t *testing.T) {
	e := &lateEngine{}
	verifyEach(t, releasingEngine{e}, 10)
	if len(e.storage) == len(e.reads) {
		t.Errorf("%d calls used %d distinct buffers: none was reused", len(e.reads), len(e.storage))
	}
}
