package twilio

import (
	"bytes"
	"testing"
)

// The WebSocket layer refuses text messages that are not UTF-8 (status
// 1007), but the parser must not depend on it: invalid UTF-8 inside a
// message is handled like any other unexpected value.
func TestHandleInvalidUTF8(t *testing.T) {
	payload := bytes.Repeat([]byte{0x55}, 160)
	for _, tc := range []struct {
		name          string
		msg           string
		frames        int
		ignored, malf uint64
	}{
		{"valid", string(mediaLine("inbound", 200, payload)), 1, 0, 0},
		{"track", string(mediaLine("in\xffbound", 200, payload)), 0, 1, 0},
		{"event", `{"event":"me` + "\xff" + `dia","media":{}}`, 0, 1, 0},
		{"bare byte", "{\xff}", 0, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testStream(nil)
			s.handle([]byte(tc.msg))
			st := s.Stats()
			if int(st.FramesReceived) != tc.frames || st.Ignored != tc.ignored || st.Malformed != tc.malf {
				t.Errorf("stats %+v; want %d frames, %d ignored, %d malformed", st, tc.frames, tc.ignored, tc.malf)
			}
		})
	}
}
