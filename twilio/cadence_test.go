package twilio_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/twilio"
)

// With a read cadence, media messages written while the reader pauses are
// read in batches and every frame reaches ReadFrame, in order, with its
// timestamp.
func TestReadCadenceDeliversAllFramesInOrder(t *testing.T) {
	const n = 100
	rc, s, wire, payload := startRawStream(t, n, &twilio.AcceptOptions{ReadCadence: 30 * time.Millisecond})
	go func() {
		for i := range wire {
			if _, err := rc.nc.Write(wire[i]); err != nil {
				return
			}
			if i%10 == 0 {
				time.Sleep(2 * time.Millisecond)
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range n {
		f, err := s.ReadFrame(ctx)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if f.Seq != uint64(i+1) || f.Timestamp != time.Duration(i)*20*time.Millisecond || !bytes.Equal(f.Payload, payload) {
			t.Fatalf("frame %d: seq %d timestamp %v", i, f.Seq, f.Timestamp)
		}
	}
	if st := s.Stats(); st.FramesReceived != n || st.FramesDropped != 0 || st.FramesLate != 0 {
		t.Errorf("stats %+v", st)
	}
}

// After stop the reader no longer pauses: the end of the connection is
// seen at once even with a cadence of an hour, and ReadFrame returns the
// frames sent before stop, then io.EOF.
func TestReadCadenceEndsAtStop(t *testing.T) {
	ms := newMediaServer(t, &twilio.AcceptOptions{AuthTokens: []string{testToken}, ReadCadence: time.Hour})
	rc := dialRaw(t, ms)
	s := ms.next(t)
	payload := make([]byte, twilio.FrameBytes)
	var all []byte
	for _, m := range []string{
		`{"event":"connected","protocol":"Call","version":"1.0.0"}`,
		`{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{}},"streamSid":"MZ1"}`,
		twilioMedia(155, payload), twilioMedia(175, payload), twilioMedia(195, payload),
		`{"event":"stop","sequenceNumber":"5","streamSid":"MZ1","stop":{"accountSid":"AC1","callSid":"CA1"}}`,
	} {
		all = append(all, maskedText(m)...)
	}
	if _, err := rc.nc.Write(all); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 3 {
		if f, err := s.ReadFrame(ctx); err != nil || f.Seq != uint64(i+1) {
			t.Fatalf("frame %d: %d, %v", i, f.Seq, err)
		}
	}
	if _, err := s.ReadFrame(ctx); err != io.EOF {
		t.Fatalf("after the frames: %v, want io.EOF", err)
	}
	// Twilio closes the connection right after stop; the reader has read
	// everything before it.
	if _, err := rc.nc.Write([]byte{0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the reader paused after stop: Done not closed within 10 s")
	}
	if err := s.Err(); err != nil {
		t.Errorf("Err after stop: %v", err)
	}
}

// A ReadFrame waiting while the reader pauses returns at once on Close
// and CloseNow, and the reader goroutine exits (Done).
func TestReadCadenceCloseDuringPause(t *testing.T) {
	for _, graceful := range []bool{false, true} {
		name := "CloseNow"
		if graceful {
			name = "Close"
		}
		t.Run(name, func(t *testing.T) {
			rc, s, _, _ := startRawStream(t, 0, &twilio.AcceptOptions{ReadCadence: time.Hour})
			if graceful {
				go func() {
					// The peer answers the close handshake.
					for {
						var h [2]byte
						if _, err := io.ReadFull(rc.br, h[:]); err != nil {
							return
						}
						if _, err := io.CopyN(io.Discard, rc.br, int64(h[1]&0x7F)); err != nil {
							return
						}
						if h[0]&0x0F == 0x8 {
							_, _ = rc.nc.Write([]byte{0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8})
							return
						}
					}
				}()
			}
			errc := make(chan error, 1)
			go func() {
				_, err := s.ReadFrame(context.Background())
				errc <- err
			}()
			time.Sleep(20 * time.Millisecond) // the reader is in its pause
			closed := make(chan error, 1)
			go func() {
				if graceful {
					closed <- s.Close()
				} else {
					closed <- s.CloseNow()
				}
			}()
			for _, c := range []chan error{errc, closed} {
				select {
				case err := <-c:
					if c == errc && !errors.Is(err, net.ErrClosed) {
						t.Fatalf("ReadFrame: %v, want net.ErrClosed", err)
					}
					if c == closed && err != nil {
						t.Fatalf("%s: %v", name, err)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("no return within 10 s of %s during a cadence pause", name)
				}
			}
			select {
			case <-s.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("reader goroutine still running")
			}
		})
	}
}

// A peer that sends junk instead of start: the first malformed message
// ends the stream (close 1007), and Start's error names it, not only the
// end of the connection (the bytes are a text frame "hello" and a start
// without its start object, never read).
func TestStartErrorNamesJunkBeforeStart(t *testing.T) {
	ms := newMediaServer(t, &twilio.AcceptOptions{AuthTokens: []string{testToken}})
	rc := dialRaw(t, ms)
	s := ms.next(t)
	msgs := append(maskedText("hello"), maskedText(`{"event":"start","sequenceNumber":"1","streamSid":"MZ1"}`)...)
	if _, err := rc.nc.Write(msgs); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := s.Start(ctx)
	if !errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(err, twilio.ErrMalformed) || voicegate.CloseStatus(err) != 1007 {
		t.Fatalf("Start: %v", err)
	}
}
