package twilio_test

import (
	"context"
	"encoding/binary"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/twilio"
)

const testToken = "test-auth-token"

// mediaServer runs twilio.Accept behind an httptest server on 127.0.0.1.
type mediaServer struct {
	URL     string // ws://127.0.0.1:port/media
	streams chan *twilio.Stream
	errs    chan error
	srv     *httptest.Server
	mu      sync.Mutex
	all     []*twilio.Stream
}

func newMediaServer(t testing.TB, opts *twilio.AcceptOptions) *mediaServer {
	t.Helper()
	ms := &mediaServer{streams: make(chan *twilio.Stream, 16), errs: make(chan error, 16)}
	ms.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o := *opts
		if o.PublicURL == "" && o.PublicOrigin == "" {
			o.PublicURL = "ws://" + r.Host + "/media"
		}
		s, err := twilio.Accept(w, r, &o)
		if err != nil {
			ms.errs <- err
			return
		}
		ms.mu.Lock()
		ms.all = append(ms.all, s)
		ms.mu.Unlock()
		ms.streams <- s
	}))
	ms.URL = "ws" + strings.TrimPrefix(ms.srv.URL, "http") + "/media"
	t.Cleanup(func() {
		ms.mu.Lock()
		for _, s := range ms.all {
			s.CloseNow()
		}
		ms.mu.Unlock()
		ms.srv.Close()
	})
	return ms
}

func (ms *mediaServer) next(t testing.TB) *twilio.Stream {
	t.Helper()
	select {
	case s := <-ms.streams:
		return s
	case err := <-ms.errs:
		t.Fatalf("accept: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no stream accepted")
	}
	return nil
}

// synthULaw returns d of 8 kHz μ-law: a tone sweep with a little noise,
// deterministic.
func synthULaw(d time.Duration) []byte {
	n := int(d / (time.Second / 8000))
	pcm := make([]int16, n)
	var x uint32 = 1
	for i := range pcm {
		f := 200 + 600*math.Sin(float64(i)/8000*0.5)
		x = x*1664525 + 1013904223
		noise := float64(int32(x>>16)&0x3ff) - 512
		pcm[i] = int16(8000*math.Sin(2*math.Pi*f*float64(i)/8000) + noise)
	}
	out := make([]byte, n)
	codec.EncodeULaw(out, pcm)
	return out
}

func ulawWAV(t testing.TB, data []byte) []byte {
	t.Helper()
	b, err := codec.EncodeWAV(nil, codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1}, data)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pcmWAV(t testing.TB, pcm []int16) []byte {
	t.Helper()
	raw := make([]byte, 2*len(pcm))
	for i, v := range pcm {
		binary.LittleEndian.PutUint16(raw[2*i:], uint16(v))
	}
	b, err := codec.EncodeWAV(nil, codec.WAVFormat{Encoding: voicegate.L16, SampleRate: 8000, Channels: 1}, raw)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readAll reads frames until an error, which it returns with the frames
// (payloads cloned).
func readAll(t testing.TB, s *twilio.Stream) ([]voicegate.Frame, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []voicegate.Frame
	for {
		f, err := s.ReadFrame(ctx)
		if err != nil {
			return out, err
		}
		out = append(out, f.Clone())
	}
}

func newRawServer(t testing.TB, h http.HandlerFunc) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}
