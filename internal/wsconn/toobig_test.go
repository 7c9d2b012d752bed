package wsconn

import (
	"testing"
	"time"
)

// TestTooBigHook: a message over the read limit is refused from its
// header, unread; the SetTooBig hook runs first with the message's type
// and size, and a message it writes reaches the peer before the close
// frame with status 1009.
func TestTooBigHook(t *testing.T) {
	for _, c := range []struct {
		name   string
		frames []byte
		typ    MessageType
		size   uint64
	}{
		{"one frame", clientFrame(opBinary, nil, frameOpts{fin: true, setLen: true, rawLen: 2 << 20}), MessageBinary, 2 << 20},
		{"fragments", append(clientFrame(opText, make([]byte, 100), frameOpts{}), clientFrame(opContinuation, nil, frameOpts{fin: true, setLen: true, rawLen: 1000})...), MessageText, 1100},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newServer(t, &AcceptOptions{CloseTimeout: 200 * time.Millisecond})
			rc := dialRaw(t, s, nil)
			conn := s.conn(t)
			conn.SetReadLimit(1024)
			var gotTyp MessageType
			var gotSize uint64
			conn.SetTooBig(func(typ MessageType, size uint64) {
				gotTyp, gotSize = typ, size
				if err := conn.WriteMessage(t.Context(), MessageText, []byte("too big")); err != nil {
					t.Errorf("write from the hook: %v", err)
				}
			})
			rc.write(t, c.frames)
			rc.write(t, clientFrame(opClose, closePayload(StatusNormalClosure, ""), frameOpts{fin: true}))
			if _, _, err := conn.ReadMessage(); asProtocolError(t, err).Code != StatusMessageTooBig {
				t.Fatalf("ReadMessage: %v", err)
			}
			if gotTyp != c.typ || gotSize != c.size {
				t.Fatalf("hook got %v %d, want %v %d", gotTyp, gotSize, c.typ, c.size)
			}
			f, err := rc.readFrame()
			if err != nil || f.op != opText || string(f.payload) != "too big" {
				t.Fatalf("first frame %+v %v, want the hook's message", f, err)
			}
			if code := rc.readClose(t); code != StatusMessageTooBig {
				t.Fatalf("close status %d, want 1009", code)
			}
		})
	}
}
