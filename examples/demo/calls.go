package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/audiohook/audiohooktest"
	"github.com/voicegate/voicegate/audiohook/wire"
	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/twilio/twiliotest"
)

// callSpec is one recorded call the demo plays.
type callSpec struct {
	Label     string   // "call 1"
	Protocol  string   // "twilio" or "audiohook"
	Operation string   // "register" or "verify"
	Caller    string   // the caller id the call claims
	Speaker   string   // who really speaks (fixture voice)
	Clips     []string // fixture files under <testdata>/voices, played back to back
	Expected  string   // the outcome the demo expects
}

// Fictional phone numbers: 555-01xx in North America, 0131 496 0xxx
// (reserved for drama) in the UK.
const (
	twilioCaller    = "+14155550101"
	audiohookCaller = "+441314960102"
)

// scenario returns the calls the demo plays: on each protocol, a register
// of caller A, a verify by caller A saying something else, and a verify by an
// impostor claiming to be caller A. The voices are CMU flite voices that the
// offline engine separates by a wide margin (genuine scores above 0.9,
// impostor scores below 0.05 at the default threshold of 0.5). A register
// collects 10 s of net speech, more than one clip holds, so it plays two
// clips back to back.
func scenario() []callSpec {
	calls := []callSpec{
		{Protocol: "twilio", Operation: "register", Caller: twilioCaller, Speaker: "slt", Clips: []string{"slt_1.wav", "slt_2.wav"}, Expected: "result-success"},
		{Protocol: "twilio", Operation: "verify", Caller: twilioCaller, Speaker: "slt", Clips: []string{"slt_3.wav"}, Expected: "result-success"},
		{Protocol: "twilio", Operation: "verify", Caller: twilioCaller, Speaker: "kal", Clips: []string{"kal_3.wav"}, Expected: "result-fail-score"},
		{Protocol: "audiohook", Operation: "register", Caller: audiohookCaller, Speaker: "awb", Clips: []string{"awb_1.wav", "awb_2.wav"}, Expected: "result-success"},
		{Protocol: "audiohook", Operation: "verify", Caller: audiohookCaller, Speaker: "awb", Clips: []string{"awb_3.wav"}, Expected: "result-success"},
		{Protocol: "audiohook", Operation: "verify", Caller: audiohookCaller, Speaker: "slt", Clips: []string{"slt_3.wav"}, Expected: "result-fail-score"},
	}
	for i := range calls {
		calls[i].Label = fmt.Sprintf("call %d", i+1)
	}
	return calls
}

// role describes who speaks in a call, for the header line.
func (c callSpec) role(registered map[string]string) string {
	switch c.Operation {
	case "register":
		return "caller A registers"
	case "":
		return "no operation: the server verifies"
	}
	if registered[c.Caller] == c.Speaker {
		return "caller A again, another utterance"
	}
	return "impostor (" + c.Speaker + ") claims to be caller A"
}

// findTestdata returns the directory holding voices/: dir when given, else
// testdata/ of the module, found by walking up from the working directory.
func findTestdata(dir string) (string, error) {
	if dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "voices")); err != nil {
			return "", fmt.Errorf("-testdata %s: %w", dir, err)
		}
		return dir, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			td := filepath.Join(d, "testdata")
			if _, err := os.Stat(filepath.Join(td, "voices")); err != nil {
				return "", fmt.Errorf("module root %s has no testdata/voices; pass -testdata", d)
			}
			return td, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s: run from the repository or pass -testdata", wd)
		}
	}
}

// loadCall reads the clips of a call and joins them into one 8 kHz mono
// μ-law WAV file, the format of telephone audio.
func loadCall(testdata string, clips []string) ([]byte, error) {
	var data []byte
	for _, name := range clips {
		b, err := os.ReadFile(filepath.Join(testdata, "voices", name))
		if err != nil {
			return nil, err
		}
		w, err := codec.ParseWAV(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if w.Format.SampleRate != 8000 {
			return nil, fmt.Errorf("%s: %d Hz, want 8000", name, w.Format.SampleRate)
		}
		pcm := w.Mono(0)
		ulaw := make([]byte, len(pcm))
		codec.EncodeULaw(ulaw, pcm)
		data = append(data, ulaw...)
	}
	return codec.EncodeWAV(nil, codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1}, data)
}

// player places the demo's calls, as Twilio and Genesys Cloud would.
type player struct {
	fast      bool
	twilioURL string
	twToken   string
	ahURL     string
	ahKey     string
	ahSecret  []byte
	tracker   *tracker
}

// resultTimeout bounds the wait for a call's outcome after its audio was
// played.
const resultTimeout = 60 * time.Second

// play places one call and returns its outcome as reported by the server.
func (p *player) play(ctx context.Context, c callSpec, wav []byte) (string, error) {
	var (
		id   string
		dial func(ctx context.Context) error
	)
	switch c.Protocol {
	case "twilio":
		id = twiliotest.SID("CA")
		dial = func(ctx context.Context) error { return p.playTwilio(ctx, id, c, wav) }
	case "audiohook":
		id = audiohooktest.NewUUID()
		dial = func(ctx context.Context) error { return p.playAudioHook(ctx, id, c, wav) }
	default:
		return "", fmt.Errorf("unknown protocol %q", c.Protocol)
	}
	result := p.tracker.expect(id, c.Label)
	defer p.tracker.forget(id)
	if err := dial(ctx); err != nil {
		// A server that refuses a call (unknown caller, bad parameters)
		// publishes the outcome, then closes the connection, and the
		// client may see the close as a failed write. The outcome wins.
		select {
		case got := <-result:
			return got, nil
		default:
			return "", err
		}
	}
	t := time.NewTimer(resultTimeout)
	defer t.Stop()
	select {
	case got := <-result:
		return got, nil
	case <-ctx.Done():
		return "", ctx.Err()
	case <-t.C:
		return "", fmt.Errorf("no outcome %v after the call's audio ended", resultTimeout)
	}
}

// playTwilio streams the call as Twilio Media Streams does: a signed
// upgrade, then connected, start with customParameters, 20 ms media
// messages and stop.
func (p *player) playTwilio(ctx context.Context, callSID string, c callSpec, wav []byte) error {
	pace := twiliotest.RealTime
	if p.fast {
		pace = twiliotest.AsFastAsPossible
	}
	_, err := twiliotest.PlayWAV(ctx, p.twilioURL, wav, &twiliotest.Options{
		AuthToken: p.twToken,
		PublicURL: p.twilioURL,
		CallSID:   callSID,
		CustomParameters: map[string]string{
			paramCallerID:  c.Caller,
			paramOperation: c.Operation,
		},
		Pace: pace,
	})
	return err
}

// playAudioHook streams the call as Genesys Cloud does: a signed upgrade,
// open with the participant and customConfig, audio, close. The server
// ends the session with disconnect once it has a result.
func (p *player) playAudioHook(ctx context.Context, sessionID string, c callSpec, wav []byte) error {
	cfg, err := json.Marshal(map[string]string{paramCallerID: c.Caller, paramOperation: c.Operation})
	if err != nil {
		return err
	}
	client, err := audiohooktest.Dial(ctx, p.ahURL, &audiohooktest.DialOptions{
		APIKey:    p.ahKey,
		Secret:    p.ahSecret,
		SessionID: sessionID,
		Participant: &wire.Participant{
			ID:      audiohooktest.NewUUID(),
			ANI:     c.Caller,
			ANIName: "Demo caller",
			DNIS:    "+18005550199",
		},
		CustomConfig: cfg,
	})
	if err != nil {
		return err
	}
	w, err := codec.ParseWAV(wav)
	if err != nil {
		client.CloseNow()
		return err
	}
	streamErr := client.Stream(ctx, codec.NewWAVFrameReader(w, 20*time.Millisecond, voicegate.Customer), &audiohooktest.StreamOptions{Fast: p.fast})
	var de *audiohook.DisconnectError
	if errors.As(streamErr, &de) && de.Reason == wire.ReasonCompleted {
		streamErr = nil // the server has its result and ended the session
	}
	closeErr := client.Close(ctx, "")
	if errors.Is(closeErr, audiohook.ErrClosed) {
		closeErr = nil
	}
	return errors.Join(streamErr, closeErr)
}

// clipList names the clips of a call for the header line.
func clipList(clips []string) string { return strings.Join(clips, " + ") }
