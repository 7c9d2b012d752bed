package voicegate_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/voicegate/voicegate"
)

func TestFrameDuration(t *testing.T) {
	tests := []struct {
		name string
		f    voicegate.Frame
		want time.Duration
		n    int
	}{
		{"twilio 20 ms", voicegate.Frame{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1, Payload: make([]byte, 160)}, 20 * time.Millisecond, 160},
		{"audiohook stereo 200 ms", voicegate.Frame{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 2, Payload: make([]byte, 3200)}, 200 * time.Millisecond, 1600},
		{"L16 mono 10 ms", voicegate.Frame{Encoding: voicegate.L16, SampleRate: 8000, Channels: 1, Payload: make([]byte, 160)}, 10 * time.Millisecond, 80},
		{"L16 16 kHz", voicegate.Frame{Encoding: voicegate.L16, SampleRate: 16000, Channels: 1, Payload: make([]byte, 640)}, 20 * time.Millisecond, 320},
		{"empty", voicegate.Frame{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1}, 0, 0},
		{"unknown encoding", voicegate.Frame{SampleRate: 8000, Channels: 1, Payload: make([]byte, 160)}, 0, 0},
		{"no rate", voicegate.Frame{Encoding: voicegate.PCMA, Channels: 1, Payload: make([]byte, 160)}, 0, 160},
		{"no channels", voicegate.Frame{Encoding: voicegate.PCMA, SampleRate: 8000, Payload: make([]byte, 160)}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f.Duration(); got != tt.want {
				t.Errorf("Duration = %v, want %v", got, tt.want)
			}
			if got := tt.f.Samples(); got != tt.n {
				t.Errorf("Samples = %d, want %d", got, tt.n)
			}
		})
	}
}

func TestFrameEnd(t *testing.T) {
	f := voicegate.Frame{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1, Timestamp: time.Second, Payload: make([]byte, 160)}
	if got, want := f.End(), time.Second+20*time.Millisecond; got != want {
		t.Fatalf("End = %v, want %v", got, want)
	}
}

func TestFrameClone(t *testing.T) {
	f := voicegate.Frame{Encoding: voicegate.PCMU, Payload: []byte{1, 2, 3}}
	c := f.Clone()
	f.Payload[0] = 9
	if c.Payload[0] != 1 {
		t.Fatal("Clone aliases the payload")
	}
	if (voicegate.Frame{}).Clone().Payload != nil {
		t.Fatal("Clone of a nil payload should stay nil")
	}
}

func TestFrameValidate(t *testing.T) {
	ok := voicegate.Frame{Encoding: voicegate.L16, SampleRate: 8000, Channels: 2, Payload: make([]byte, 8)}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid frame: %v", err)
	}
	bad := []voicegate.Frame{
		{SampleRate: 8000, Channels: 1},
		{Encoding: voicegate.PCMU, Channels: 1},
		{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 3},
		{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 0},
		{Encoding: voicegate.L16, SampleRate: 8000, Channels: 2, Payload: make([]byte, 6)},
		{Encoding: voicegate.L16, SampleRate: 8000, Channels: 1, Payload: make([]byte, 3)},
	}
	for i, f := range bad {
		if err := f.Validate(); !errors.Is(err, voicegate.ErrFormat) {
			t.Errorf("case %d: Validate = %v, want ErrFormat", i, err)
		}
	}
}

func TestFrameChannel(t *testing.T) {
	f := voicegate.Frame{Channels: 2, Parties: [2]voicegate.Party{voicegate.Customer, voicegate.Agent}}
	if f.Channel(voicegate.Agent) != 1 || f.Channel(voicegate.Customer) != 0 {
		t.Fatal("wrong channel for party")
	}
	f.Channels = 1
	if f.Channel(voicegate.Agent) != -1 {
		t.Fatal("agent must not be found beyond Channels")
	}
}

func TestPartyText(t *testing.T) {
	for _, p := range []voicegate.Party{voicegate.PartyUnknown, voicegate.Customer, voicegate.Agent} {
		b, _ := p.MarshalText()
		var q voicegate.Party
		if err := q.UnmarshalText(b); err != nil || q != p {
			t.Errorf("round trip %v: got %v, %v", p, q, err)
		}
	}
	var q voicegate.Party
	if err := q.UnmarshalText([]byte("caller")); err == nil {
		t.Error("unknown party accepted")
	}
}

func TestEncodingString(t *testing.T) {
	for e, want := range map[voicegate.Encoding]string{voicegate.PCMU: "PCMU", voicegate.PCMA: "PCMA", voicegate.L16: "L16", 9: "Encoding(9)"} {
		if e.String() != want {
			t.Errorf("%d: %q, want %q", e, e.String(), want)
		}
	}
}

func TestSliceReader(t *testing.T) {
	frames := []voicegate.Frame{{Seq: 1}, {Seq: 2}}
	r := voicegate.NewSliceReader(frames)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.ReadFrame(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: %v", err)
	}
	for i := range frames {
		f, err := r.ReadFrame(context.Background())
		if err != nil || f.Seq != uint64(i+1) {
			t.Fatalf("frame %d: %v %v", i, f.Seq, err)
		}
	}
	if _, err := r.ReadFrame(context.Background()); err != io.EOF {
		t.Fatalf("after last frame: %v, want io.EOF", err)
	}
}

func ExampleFrame_Duration() {
	f := voicegate.Frame{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1, Payload: make([]byte, 160)}
	fmt.Println(f.Duration(), f.Samples())
	// Output: 20ms 160
}

func ExampleFrameReader() {
	var r voicegate.FrameReader = voicegate.NewSliceReader([]voicegate.Frame{
		{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1, Payload: make([]byte, 160)},
		{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1, Payload: make([]byte, 160), Timestamp: 20 * time.Millisecond},
	})
	var total time.Duration
	for {
		f, err := r.ReadFrame(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		total += f.Duration()
	}
	fmt.Println(total)
	// Output: 40ms
}
