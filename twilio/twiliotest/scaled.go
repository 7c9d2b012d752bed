package twiliotest

import (
	"context"
	"time"
)

// ScaledClock returns a Clock that runs speed times faster than the real
// clock: Now advances speed seconds per real second from the moment
// ScaledClock was called, and Sleep(d) waits d/speed. A real-time Pace on
// it sends media at speed times real time, on a schedule that never falls
// behind, so a receiver that keeps up with that rate loses no frame
// (where AsFastAsPossible can overrun a bounded queue). speed <= 1 returns
// the real clock. It is safe for concurrent use.
func ScaledClock(speed float64) Clock {
	if speed <= 1 {
		return realClock{}
	}
	return &scaledClock{speed: speed, start: time.Now()}
}

type scaledClock struct {
	speed float64
	start time.Time // the real and the scaled clock agree here
}

func (c *scaledClock) Now() time.Time {
	return c.start.Add(time.Duration(float64(time.Since(c.start)) * c.speed))
}

func (c *scaledClock) Sleep(ctx context.Context, d time.Duration) error {
	return realClock{}.Sleep(ctx, time.Duration(float64(d)/c.speed))
}
