package daspeaktest_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"testing"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/codec"
)

// tone synthesizes a WAV file: speech seconds of a tone at freq Hz (a
// stand-in for a voice), then silence seconds.
func tone(t testing.TB, enc voicegate.Encoding, rate, channels int, freq, speech, silence float64) []byte {
	t.Helper()
	n := int(speech * float64(rate))
	total := n + int(silence*float64(rate))
	pcm := make([]int16, total*channels)
	for i := 0; i < n; i++ {
		s := int16(8000 * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
		for c := 0; c < channels; c++ {
			// Channel 2 gets a different tone so channels differ.
			if c == 1 {
				s = int16(8000 * math.Sin(2*math.Pi*(freq*1.5)*float64(i)/float64(rate)))
			}
			pcm[i*channels+c] = s
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

// voice is a 5 s μ-law 8 kHz mono "voice" at freq Hz.
func voice(t testing.TB, freq float64) []byte {
	return tone(t, voicegate.PCMU, 8000, 1, freq, 5, 1)
}

// rawWAV builds a PCM WAV header by hand, for formats codec.EncodeWAV
// refuses to write.
func rawWAV(tag uint16, channels, rate, bits int, dataLen int) []byte {
	le := binary.LittleEndian
	var b []byte
	b = append(b, "RIFF"...)
	b = le.AppendUint32(b, uint32(4+8+16+8+dataLen))
	b = append(b, "WAVEfmt "...)
	b = le.AppendUint32(b, 16)
	b = le.AppendUint16(b, tag)
	b = le.AppendUint16(b, uint16(channels))
	b = le.AppendUint32(b, uint32(rate))
	block := channels * bits / 8
	b = le.AppendUint32(b, uint32(rate*block))
	b = le.AppendUint16(b, uint16(block))
	b = le.AppendUint16(b, uint16(bits))
	b = append(b, "data"...)
	b = le.AppendUint32(b, uint32(dataLen))
	return append(b, make([]byte, dataLen)...)
}

type part struct {
	name, value string
	file        []byte
}

func fields(kv ...string) []part {
	var ps []part
	for i := 0; i+1 < len(kv); i += 2 {
		ps = append(ps, part{name: kv[i], value: kv[i+1]})
	}
	return ps
}

func fileP(name string, b []byte) part { return part{name: name, file: b} }

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

// post sends a multipart POST to the emulator.
func post(t testing.TB, base, path string, hdr http.Header, parts ...part) response {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		if p.file == nil {
			if err := mw.WriteField(p.name, p.value); err != nil {
				t.Fatal(err)
			}
			continue
		}
		h := make(textproto.MIMEHeader)
		h.Set("Content-Disposition", `form-data; name="`+p.name+`"; filename="audio.wav"`)
		h.Set("Content-Type", "audio/wav")
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(p.file)
	}
	mw.Close()
	req, err := http.NewRequest(http.MethodPost, base+path, &buf)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return do(t, req)
}

func get(t testing.TB, base, path string, hdr http.Header) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	return do(t, req)
}

func postForm(t testing.TB, u string, v url.Values, hdr http.Header) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(v.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, vv := range hdr {
		req.Header[k] = vv
	}
	return do(t, req)
}

func do(t testing.TB, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}
