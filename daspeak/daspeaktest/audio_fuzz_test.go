package daspeaktest

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/daspeak"
)

func seedWAV(f *testing.F, enc voicegate.Encoding, rate, channels, samples int) []byte {
	data := make([]byte, samples*channels*enc.BytesPerSample())
	for i := range data {
		data[i] = byte(i * 7)
	}
	b, err := codec.EncodeWAV(nil, codec.WAVFormat{Encoding: enc, SampleRate: rate, Channels: channels}, data)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzCheckAudio feeds arbitrary uploads through the emulator's WAV checks
// and FakeEngine: they must answer with a das-Peak exception, never panic.
func FuzzCheckAudio(f *testing.F) {
	ulaw := seedWAV(f, voicegate.PCMU, 8000, 1, 800)
	f.Add(ulaw, "1")
	f.Add(seedWAV(f, voicegate.L16, 16000, 2, 400), "2")
	f.Add(seedWAV(f, voicegate.PCMA, 8000, 1, 10), "")
	three := append([]byte(nil), seedWAV(f, voicegate.L16, 8000, 2, 100)...)
	binary.LittleEndian.PutUint16(three[22:], 3)
	f.Add(three, "1")
	rate := append([]byte(nil), ulaw...)
	binary.LittleEndian.PutUint32(rate[24:], 44100)
	f.Add(rate, "1")
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVEfmt \xff\xff\xff\xff"), "1")
	f.Add([]byte{}, "3")
	e := NewEmulator(nil, nil)
	known := map[string]bool{
		daspeak.ExceptionAudioInput: true, daspeak.ExceptionNoAudio: true, daspeak.ExceptionInvalidChannel: true,
	}
	f.Fuzz(func(t *testing.T, b []byte, channel string) {
		ch, ae := parseChannel(channel)
		if ae != nil {
			if ch != 0 || ae.Exception != daspeak.ExceptionInvalidChannel {
				t.Fatalf("channel %q: %d %v", channel, ch, ae)
			}
			return
		}
		a, ae := e.checkAudio(b, ch)
		if ae != nil {
			if !known[ae.Exception] {
				t.Fatalf("unexpected exception %v", ae)
			}
			return
		}
		if a.duration >= 30 || (a.rate != 8000 && a.rate != 16000) {
			t.Fatalf("accepted %v s at %d Hz", a.duration, a.rate)
		}
		if _, ae := e.checkNetSpeech(0, a); ae != nil && ae.Exception != daspeak.ExceptionVoiceDurationIsNotEnough {
			t.Fatal(ae)
		}
		res, err := FakeEngine{}.GenerateCredential(context.Background(), FakeModel, b, &daspeak.AudioOptions{Channel: ch})
		if err != nil {
			t.Fatalf("FakeEngine rejected audio the emulator accepted: %v", err)
		}
		if _, err := (FakeEngine{}).CredentialModel(context.Background(), res.Credential); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzFakeCredential: arbitrary credentials give InvalidCredential or a
// model, never a panic.
func FuzzFakeCredential(f *testing.F) {
	f.Add("eyJtIjoiZmFrZS1tb2RlbC0wMDAxIiwidiI6ImFiIn0=")
	f.Add("Decryption error")
	f.Add("")
	f.Fuzz(func(t *testing.T, c string) {
		_, err := FakeEngine{}.CompareCredentials(context.Background(), c, c, "")
		if err != nil {
			if !errorIs(err, daspeak.ErrInvalidCredential) {
				t.Fatal(err)
			}
		}
	})
}
