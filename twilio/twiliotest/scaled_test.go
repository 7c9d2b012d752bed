package twiliotest

import (
	"context"
	"testing"
	"time"
)

// TestScaledClockSchedule: on a ScaledClock, the simulator's real-time
// schedule (wait until frame i is due, measured on the clock) runs at
// speed times real time. The clock's own Now must be scaled too: a scaled
// Sleep with a real Now makes the schedule catch up to real time.
func TestScaledClockSchedule(t *testing.T) {
	const (
		speed  = 8.0
		frames = 100 // 2 s of audio
	)
	clk := ScaledClock(speed)
	ctx := context.Background()
	t0real := time.Now()
	t0 := clk.Now()
	for i := 1; i < frames; i++ {
		due := time.Duration(i) * FrameDuration
		if err := clk.Sleep(ctx, due-clk.Now().Sub(t0)); err != nil {
			t.Fatal(err)
		}
	}
	got := time.Since(t0real)
	audio := time.Duration(frames-1) * FrameDuration
	// 8x: 248 ms of wall time for 1.98 s of audio; a clock whose Now is
	// not scaled takes most of the 1.98 s.
	if got < audio/time.Duration(speed) || got > audio/2 {
		t.Errorf("%v of audio took %v at %vx; want about %v", audio, got, speed, audio/time.Duration(speed))
	}
	if el := clk.Now().Sub(t0); el < audio {
		t.Errorf("scaled clock advanced %v, want at least %v", el, audio)
	}
}

func TestScaledClockRealTime(t *testing.T) {
	for _, s := range []float64{0, 1, -3} {
		if _, ok := ScaledClock(s).(realClock); !ok {
			t.Errorf("ScaledClock(%v) is not the real clock", s)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ScaledClock(4).Sleep(ctx, time.Hour); err == nil {
		t.Error("Sleep on an ended context returned nil")
	}
}
