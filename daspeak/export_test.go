package daspeak

import "context"

// CallOrder returns the arrival and admission numbers, among its
// Limiter's callers, of the Limiter slot that ctx (an engine call's
// context) carries; ok is false without one.
func CallOrder(ctx context.Context) (arrival, admission uint64, ok bool) {
	s := slotFrom(ctx)
	if s == nil || !s.held {
		return 0, 0, false
	}
	return s.order.arrival, s.order.admission, true
}
