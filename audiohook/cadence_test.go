package audiohook

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// With a read cadence, audio frames written while the reader pauses all
// reach ReadFrame in order, and the close transaction completes.
func TestReadCadenceDeliversAudio(t *testing.T) {
	const n = 20
	type result struct {
		firsts []byte
		err    error
	}
	got := make(chan result, 1)
	u := testServer(t, &ServerOptions{Keys: StaticKeys{testKey: nil}, ReadCadence: 30 * time.Millisecond}, func(s *Session) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var r result
		for {
			f, err := s.ReadFrame(ctx)
			if err != nil {
				r.err = err
				break
			}
			r.firsts = append(r.firsts, f.Payload[0])
		}
		got <- r
		<-s.Done()
	})
	ctx := ctxT(t)
	r := openMono(t, ctx, u)
	defer r.c.CloseNow()
	for i := range n {
		b := make([]byte, 160)
		b[0] = byte(i)
		if err := r.c.Write(ctx, websocket.MessageBinary, b); err != nil {
			t.Fatal(err)
		}
		if i%5 == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if _, err := r.roundTrip(ctx, "close", `{"reason":"end"}`); err != nil {
		t.Fatal(err)
	}
	res := <-got
	if res.err != io.EOF {
		t.Fatalf("ReadFrame ended with %v, want io.EOF", res.err)
	}
	if len(res.firsts) != n {
		t.Fatalf("%d frames read, want %d", len(res.firsts), n)
	}
	for i, b := range res.firsts {
		if b != byte(i) {
			t.Fatalf("frame %d is frame %d", i, b)
		}
	}
}

// A ReadFrame waiting while the reader pauses returns at once on
// CloseNow, and the session's goroutines end.
func TestReadCadenceCloseNowDuringPause(t *testing.T) {
	done := make(chan error, 1)
	u := testServer(t, &ServerOptions{Keys: StaticKeys{testKey: nil}, ReadCadence: time.Hour}, func(s *Session) {
		if _, err := s.Open(context.Background()); err != nil {
			done <- err
			return
		}
		errc := make(chan error, 1)
		go func() {
			_, err := s.ReadFrame(context.Background())
			errc <- err
		}()
		time.Sleep(20 * time.Millisecond) // the reader is in its pause
		_ = s.CloseNow()
		select {
		case err := <-errc:
			select {
			case <-s.Done():
				done <- err
			case <-time.After(10 * time.Second):
				done <- errors.New("session goroutines still running 10 s after CloseNow")
			}
		case <-time.After(10 * time.Second):
			done <- errors.New("ReadFrame did not return within 10 s of CloseNow")
		}
	})
	ctx := ctxT(t)
	r := openMono(t, ctx, u)
	defer r.c.CloseNow()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadFrame: %v, want ErrClosed", err)
	}
}
