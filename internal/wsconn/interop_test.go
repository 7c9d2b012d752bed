package wsconn

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// dialCoder connects a github.com/coder/websocket client to s.
func dialCoder(t *testing.T, s *server, opts *websocket.DialOptions) (*websocket.Conn, *Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cc, _, err := websocket.Dial(ctx, s.url(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.CloseNow() })
	return cc, s.conn(t)
}

func TestInteropMessages(t *testing.T) {
	s := newServer(t, nil)
	cc, c := dialCoder(t, s, &websocket.DialOptions{CompressionMode: websocket.CompressionContextTakeover})
	c.SetReadLimit(1 << 20)
	cc.SetReadLimit(1 << 20)
	ctx := t.Context()
	big := bytes.Repeat([]byte("0123456789abcdef"), 40000/16)
	tests := []struct {
		name string
		typ  websocket.MessageType
		frag [][]byte // written with one Writer, one Write per element
	}{
		{"empty binary", websocket.MessageBinary, nil},
		{"empty text", websocket.MessageText, nil},
		{"small binary", websocket.MessageBinary, [][]byte{{1, 2, 3}}},
		{"text", websocket.MessageText, [][]byte{[]byte("héllo wörld ✓")}},
		{"125 bytes", websocket.MessageBinary, [][]byte{make([]byte, 125)}},
		{"126 bytes", websocket.MessageBinary, [][]byte{make([]byte, 126)}},
		{"65535 bytes", websocket.MessageBinary, [][]byte{make([]byte, 65535)}},
		{"65536 bytes", websocket.MessageBinary, [][]byte{make([]byte, 65536)}},
		{"odd length", websocket.MessageBinary, [][]byte{big[:1001]}},
		{"fragmented binary", websocket.MessageBinary, [][]byte{big[:7], big[7:4000], big[4000:]}},
		{"fragmented text", websocket.MessageText, [][]byte{[]byte("frag"), []byte("mented "), []byte("tëxt")}},
		// coder's Writer flushes each Write as its own frame, so this splits a
		// UTF-8 sequence across frames; it is valid as a whole message.
		{"UTF-8 split across fragments", websocket.MessageText, [][]byte{{0xe2, 0x82}, {0xac}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := cc.Writer(ctx, tt.typ)
			if err != nil {
				t.Fatal(err)
			}
			var want []byte
			for _, f := range tt.frag {
				if _, err := w.Write(f); err != nil {
					t.Fatal(err)
				}
				want = append(want, f...)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			typ, p, err := c.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if typ != MessageType(tt.typ) || !bytes.Equal(p, want) {
				t.Fatalf("got %v %d bytes, want %v %d bytes", typ, len(p), tt.typ, len(want))
			}
			// Echo it back.
			if err := c.WriteMessage(ctx, typ, p); err != nil {
				t.Fatal(err)
			}
			gt, gp, err := cc.Read(ctx)
			if err != nil || gt != tt.typ || !bytes.Equal(gp, want) {
				t.Fatalf("echo: %v %d bytes %v", gt, len(gp), err)
			}
		})
	}
}

// TestInteropPing checks that pings from the client are answered while
// the server reads, including a ping between fragments, and that server
// pings are answered by the client.
func TestInteropPing(t *testing.T) {
	s := newServer(t, nil)
	cc, c := dialCoder(t, s, nil)
	// Bounded, so that a missing pong fails the test instead of hanging it.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				errc <- err
				return
			}
		}
	}()
	// coder's Ping waits for the pong, which needs a reader on its side.
	cc.CloseRead(ctx)
	for i := range 3 {
		if err := cc.Ping(ctx); err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
	}
	if err := c.WritePing(ctx, []byte("srv")); err != nil {
		t.Fatal(err)
	}
	if err := c.WritePing(ctx, make([]byte, 126)); err == nil {
		t.Fatal("ping of 126 bytes sent")
	}
	if err := c.Close(StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	var ce *CloseError
	if err := <-errc; !errors.As(err, &ce) || ce.Code != StatusNormalClosure {
		t.Fatalf("reader ended with %v, want the client's close answer", err)
	}
}

// TestRawPingBetweenFragments checks a ping interleaved in a fragmented
// message is answered with a pong carrying its payload.
func TestRawPingBetweenFragments(t *testing.T) {
	s := newServer(t, nil)
	rc := dialRaw(t, s, nil)
	c := s.conn(t)
	var b []byte
	b = append(b, cont(opBinary, []byte("ab"))...)
	b = append(b, fin(opPing, []byte("ping!"))...)
	b = append(b, fin(opPong, []byte("stray pong"))...)
	b = append(b, cont(opContinuation, []byte("cd"))...)
	b = append(b, fin(opContinuation, []byte("ef"))...)
	rc.write(t, b)
	typ, p, err := c.ReadMessage()
	if err != nil || typ != MessageBinary || string(p) != "abcdef" {
		t.Fatalf("ReadMessage = %v %q %v", typ, p, err)
	}
	f, err := rc.readFrame()
	if err != nil || f.op != opPong || !f.fin || string(f.payload) != "ping!" {
		t.Fatalf("pong = %+v %v", f, err)
	}
	if err := c.WritePing(t.Context(), []byte("srv")); err != nil {
		t.Fatal(err)
	}
	if f, err := rc.readFrame(); err != nil || f.op != opPing || !f.fin || string(f.payload) != "srv" {
		t.Fatalf("server ping = %+v %v", f, err)
	}
	if err := c.Close(StatusNoStatusRcvd, ""); err == nil {
		t.Fatal("Close with status 1005 accepted")
	}
}

// TestInteropCloseFromClient checks close codes sent by the client are
// echoed and reported.
func TestInteropCloseFromClient(t *testing.T) {
	for _, code := range []websocket.StatusCode{websocket.StatusNormalClosure, websocket.StatusGoingAway, websocket.StatusPolicyViolation, 4000, 4999} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			s := newServer(t, nil)
			cc, c := dialCoder(t, s, nil)
			errc := make(chan error, 1)
			go func() {
				_, _, err := c.ReadMessage()
				errc <- err
			}()
			// coder's Close waits for our echo.
			if err := cc.Close(code, "reason ✓"); err != nil {
				t.Fatalf("client Close: %v", err)
			}
			var ce *CloseError
			if err := <-errc; !errors.As(err, &ce) || ce.Code != StatusCode(code) || ce.Reason != "reason ✓" {
				t.Fatalf("ReadMessage error %v, want CloseError %d", err, code)
			}
			if err := c.WriteMessage(t.Context(), MessageText, []byte("late")); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("write after close: %v", err)
			}
			if err := c.Close(StatusNormalClosure, ""); err != nil {
				t.Fatalf("Close after the peer's close: %v", err)
			}
			if err := c.Close(StatusNormalClosure, ""); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("second Close: %v", err)
			}
		})
	}
}

// TestInteropCloseFromServer checks Close's code and reason reach the
// client, with and without a concurrent ReadMessage.
func TestInteropCloseFromServer(t *testing.T) {
	for _, reading := range []bool{true, false} {
		for _, code := range []StatusCode{StatusNormalClosure, StatusGoingAway, StatusInternalError, 4001} {
			t.Run(fmt.Sprintf("reading=%v/%d", reading, code), func(t *testing.T) {
				s := newServer(t, nil)
				cc, c := dialCoder(t, s, nil)
				errc := make(chan error, 1)
				if reading {
					go func() {
						for {
							if _, _, err := c.ReadMessage(); err != nil {
								errc <- err
								return
							}
						}
					}()
				}
				cerr := make(chan error, 1)
				go func() {
					// Unread data does not stop Close from finding the close.
					_ = cc.Write(context.Background(), websocket.MessageText, []byte("in flight"))
					_, _, err := cc.Read(context.Background())
					cerr <- err
				}()
				if err := c.Close(code, "server done"); err != nil {
					t.Fatal(err)
				}
				err := <-cerr
				if websocket.CloseStatus(err) != websocket.StatusCode(code) {
					t.Fatalf("client read %v, want close status %d", err, code)
				}
				var ce websocket.CloseError
				if errors.As(err, &ce) && ce.Reason != "server done" {
					t.Errorf("reason %q", ce.Reason)
				}
				if reading {
					if err := <-errc; err == nil {
						t.Fatal("ReadMessage returned no error")
					}
				}
				if _, _, err := c.ReadMessage(); err == nil {
					t.Fatal("ReadMessage after Close returned no error")
				}
				if err := c.CloseNow(); !errors.Is(err, net.ErrClosed) {
					t.Fatalf("CloseNow after Close: %v", err)
				}
			})
		}
	}
}

func TestInteropReadLimit(t *testing.T) {
	s := newServer(t, nil)
	cc, c := dialCoder(t, s, nil)
	c.SetReadLimit(1000)
	ctx := t.Context()
	cerr := make(chan error, 1)
	go func() {
		_ = cc.Write(ctx, websocket.MessageBinary, make([]byte, 1000))
		_ = cc.Write(ctx, websocket.MessageBinary, make([]byte, 1001))
		_, _, err := cc.Read(ctx)
		cerr <- err
	}()
	if _, p, err := c.ReadMessage(); err != nil || len(p) != 1000 {
		t.Fatalf("message at the limit: %d bytes, %v", len(p), err)
	}
	_, _, err := c.ReadMessage()
	if pe := asProtocolError(t, err); pe.Code != StatusMessageTooBig {
		t.Fatalf("code %d", pe.Code)
	}
	if err := <-cerr; websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("client saw %v, want status 1009", err)
	}
}

// TestInteropConcurrentWrites writes from many goroutines while the client
// checks every message arrives whole.
func TestInteropConcurrentWrites(t *testing.T) {
	s := newServer(t, nil)
	cc, c := dialCoder(t, s, nil)
	cc.SetReadLimit(1 << 20)
	ctx := t.Context()
	const writers, each = 8, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				size := 1 + (w*each+i)*97%70000
				p := bytes.Repeat([]byte{byte(w)}, size)
				wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err := c.WriteMessage(wctx, MessageBinary, p)
				cancel()
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range writers * each {
		_, p, err := cc.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range p {
			if b != p[0] {
				t.Fatal("interleaved message")
			}
		}
	}
	wg.Wait()
}

// TestWriteCancelled checks a write blocked mid-frame on a peer that does
// not read is interrupted by its context and ends the connection. The peer
// is a net.Pipe that reads the first bytes of the frame and stops, so the
// write is known to be half done when the context is cancelled.
func TestWriteCancelled(t *testing.T) {
	for _, read := range []int{1, 4, 10, 5000} {
		t.Run(fmt.Sprint(read), func(t *testing.T) {
			nc, peer := net.Pipe()
			defer peer.Close()
			c := newConn(nc, bufio.NewReader(nc), bufio.NewWriter(nc), "", time.Second)
			defer c.CloseNow()
			ctx, cancel := context.WithCancel(t.Context())
			errc := make(chan error, 1)
			go func() { errc <- c.WriteMessage(ctx, MessageBinary, make([]byte, 1<<16)) }()
			if _, err := io.ReadFull(peer, make([]byte, read)); err != nil {
				t.Fatal(err)
			}
			cancel()
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Fatalf("write error %v, want context.Canceled", err)
			}
			if err := c.WriteMessage(t.Context(), MessageText, []byte("x")); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("write after interrupted write: %v", err)
			}
		})
	}
}

// TestWriteCancelledBeforeStart checks a write whose context ended before
// it started writes nothing and leaves the connection usable, whichever of
// the write lock and the context the write sees first.
func TestWriteCancelledBeforeStart(t *testing.T) {
	nc, peer := net.Pipe()
	defer peer.Close()
	c := newConn(nc, bufio.NewReader(nc), bufio.NewWriter(nc), "", time.Second)
	defer c.CloseNow()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for range 50 {
		if err := c.WriteMessage(ctx, MessageText, []byte("lost")); !errors.Is(err, context.Canceled) {
			t.Fatalf("write error %v, want context.Canceled", err)
		}
	}
	go func() { _ = c.WriteMessage(t.Context(), MessageText, []byte("x")) }()
	got := make([]byte, 3)
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x81, 0x01, 'x'}; !bytes.Equal(got, want) {
		t.Fatalf("frame % x, want % x", got, want)
	}
}

// TestCloseNowUnblocksRead checks CloseNow and SetReadDeadline end a
// blocked ReadMessage.
func TestCloseNowUnblocksRead(t *testing.T) {
	s := newServer(t, nil)
	_ = dialRaw(t, s, nil)
	c := s.conn(t)
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.ReadMessage()
		errc <- err
	}()
	if err := c.CloseNow(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadMessage error %v, want net.ErrClosed", err)
	}
	if err := c.Close(StatusNormalClosure, ""); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Close after CloseNow: %v", err)
	}

	_ = dialRaw(t, s, nil)
	c = s.conn(t)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, _, err := c.ReadMessage(); !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
		t.Fatalf("ReadMessage error %v, want a timeout", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
