package daspeak_test

import (
	"math"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/daspeaktest"
)

// restTone synthesizes a WAV file: speech seconds of a tone at freq Hz (a
// stand-in for a voice), then silence seconds.
func restTone(t testing.TB, enc voicegate.Encoding, rate, channels int, freq, speech, silence float64) []byte {
	t.Helper()
	n := int(speech * float64(rate))
	pcm := make([]int16, (n+int(silence*float64(rate)))*channels)
	for i := 0; i < n; i++ {
		for c := 0; c < channels; c++ {
			f := freq * (1 + 0.5*float64(c))
			pcm[i*channels+c] = int16(8000 * math.Sin(2*math.Pi*f*float64(i)/float64(rate)))
		}
	}
	var data []byte
	switch enc {
	case voicegate.PCMU:
		data = make([]byte, len(pcm))
		codec.EncodeULaw(data, pcm)
	case voicegate.PCMA:
		data = make([]byte, len(pcm))
		codec.EncodeALaw(data, pcm)
	default:
		data = make([]byte, 2*len(pcm))
		codec.Int16ToBytes(data, pcm)
	}
	b, err := codec.EncodeWAV(nil, codec.WAVFormat{Encoding: enc, SampleRate: rate, Channels: channels}, data)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// restVoice is 5 s of μ-law 8 kHz mono "speech" at freq Hz and 1 s of
// silence.
func restVoice(t testing.TB, freq float64) []byte {
	return restTone(t, voicegate.PCMU, 8000, 1, freq, 5, 1)
}

func restServer(t testing.TB, opts *daspeaktest.Options) *daspeaktest.Server {
	t.Helper()
	srv := daspeaktest.NewServer(daspeaktest.FakeEngine{}, opts)
	t.Cleanup(srv.Close)
	return srv
}

// restClient returns a client of srv with fast retries; opts may be nil.
func restClient(t testing.TB, srv *daspeaktest.Server, opts *daspeak.ClientOptions) *daspeak.Client {
	t.Helper()
	var o daspeak.ClientOptions
	if opts != nil {
		o = *opts
	}
	o.BaseURL = srv.URL()
	if o.RetryBackoff == 0 {
		o.RetryBackoff = time.Millisecond
		o.MaxRetryBackoff = 5 * time.Millisecond
	}
	if o.HTTPClient == nil {
		tr := &http.Transport{}
		o.HTTPClient = &http.Client{Transport: tr}
		t.Cleanup(tr.CloseIdleConnections)
	}
	c, err := daspeak.NewClient(&o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// headerRecorder is a RoundTripper that keeps the headers of the requests it
// sends.
type headerRecorder struct {
	rt      http.RoundTripper
	mu      sync.Mutex
	headers []http.Header
}

func (r *headerRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.headers = append(r.headers, req.Header.Clone())
	r.mu.Unlock()
	return r.rt.RoundTrip(req)
}

func (r *headerRecorder) all() []http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]http.Header(nil), r.headers...)
}

func newHeaderRecorder(t testing.TB) (*headerRecorder, *http.Client) {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	rec := &headerRecorder{rt: tr}
	return rec, &http.Client{Transport: rec}
}
