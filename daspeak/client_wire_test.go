package daspeak_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/daspeaktest"
)

// wirePart is one multipart part as it arrived on the wire.
type wirePart struct {
	filename, contentType string
	data                  []byte
	file                  bool
}

// wireRequest is one request as it arrived on the wire.
type wireRequest struct {
	method, path, mediaType string
	parts                   map[string]wirePart
	order                   []string
}

// wireRecorder records every request, then hands it to the emulator.
type wireRecorder struct {
	next http.Handler
	mu   sync.Mutex
	reqs []wireRequest
}

func (w *wireRecorder) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := wireRequest{method: r.Method, path: strings.TrimPrefix(r.URL.EscapedPath(), daspeak.ServicePath), parts: map[string]wirePart{}}
	if mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil {
		rec.mediaType = mt
		if mt == "multipart/form-data" {
			mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
			for {
				p, err := mr.NextPart()
				if err != nil {
					break
				}
				data, _ := io.ReadAll(p)
				_, isFile := p.Header["Content-Disposition"]
				isFile = isFile && strings.Contains(p.Header.Get("Content-Disposition"), "filename=")
				rec.parts[p.FormName()] = wirePart{filename: p.FileName(), contentType: p.Header.Get("Content-Type"), data: data, file: isFile}
				rec.order = append(rec.order, p.FormName())
			}
		}
	}
	w.mu.Lock()
	w.reqs = append(w.reqs, rec)
	w.mu.Unlock()
	w.next.ServeHTTP(rw, r)
}

func (w *wireRecorder) last(t *testing.T) wireRequest {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	require.NotEmpty(t, w.reqs)
	return w.reqs[len(w.reqs)-1]
}

// TestClientMultipartFields checks, on the wire, that every one of the 11
// endpoints is called with the method, path and multipart fields of the
// das-Peak API (specs: §2.4): exact field names, nothing else, text fields
// as decimal strings, files named audio.wav with Content-Type audio/wav.
func TestClientMultipartFields(t *testing.T) {
	rec := &wireRecorder{next: daspeaktest.NewEmulator(daspeaktest.FakeEngine{}, nil)}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := daspeak.NewClient(&daspeak.ClientOptions{BaseURL: srv.URL + daspeak.ServicePath, HTTPClient: &http.Client{Transport: tr}})
	require.NoError(t, err)
	ctx := context.Background()

	// Stereo audio so that channel 2 is valid; the two files differ.
	ref := restTone(t, voicegate.L16, 8000, 2, 300, 4, 0)
	eval := restTone(t, voicegate.L16, 8000, 2, 420, 4, 0)
	credA, err := c.GenerateCredential(ctx, restModel, ref, &daspeak.AudioOptions{Channel: 2})
	require.NoError(t, err)
	credB, err := c.GenerateCredential(ctx, restModel, eval, nil)
	require.NoError(t, err)
	cands := []daspeak.Candidate{{ID: "a", Credential: credA.Credential}, {ID: "b", Credential: credB.Credential}}
	candJSON, _ := json.Marshal(cands)

	type field struct {
		name  string
		value string // text fields: the exact value; files: ignored
		file  []byte // files: the exact content
	}
	text := func(name, value string) field { return field{name: name, value: value} }
	file := func(name string, b []byte) field { return field{name: name, file: b} }
	tests := []struct {
		name   string
		call   func() error
		method string
		path   string
		fields []field
	}{
		{"1 alive", func() error { return c.Alive(ctx) }, "GET", "/alive", nil},
		{"2 models", func() error { _, err := c.Models(ctx); return err }, "GET", "/models", nil},
		{"3 model metadata", func() error { _, err := c.ModelMetadata(ctx, restModel); return err },
			"POST", "/models/metadata", []field{text("hash", restModel)}},
		{"4 calibrations", func() error { _, err := c.ModelCalibrations(ctx, restModel); return err },
			"POST", "/models/calibration", []field{text("hash", restModel)}},
		{"5 metadata from credential", func() error { _, err := c.ModelMetadataFromCredential(ctx, credA.Credential); return err },
			"POST", "/models/metadata/from-credential", []field{text("credential", credA.Credential)}},
		{"6 credential from wav", func() error {
			_, err := c.GenerateCredential(ctx, restModel, ref, &daspeak.AudioOptions{Channel: 2})
			return err
		}, "POST", "/models/" + restModel + "/credential/wav", []field{file("audio", ref), text("channel", "2"), text("calibration", "telephone-channel")}},
		{"7 credential to credential", func() error {
			_, err := c.CompareCredentials(ctx, credA.Credential, credB.Credential, "")
			return err
		}, "POST", "/similarity/credential2credential", []field{
			text("credential_reference", credA.Credential), text("credential_to_evaluate", credB.Credential), text("calibration", "telephone-channel")}},
		{"8 credential to wav", func() error {
			_, err := c.CompareCredentialToAudio(ctx, credA.Credential, eval, &daspeak.AudioOptions{Channel: 2, Calibration: "telephone-channel"})
			return err
		}, "POST", "/similarity/credential2wav", []field{
			file("audio_to_evaluate", eval), text("credential_reference", credA.Credential), text("channel", "2"), text("calibration", "telephone-channel")}},
		{"9 wav to wav", func() error {
			_, err := c.CompareAudioToAudio(ctx, ref, eval, &daspeak.AudioPairOptions{ReferenceChannel: 2})
			return err
		}, "POST", "/similarity/wav2wav", []field{
			file("audio_reference", ref), file("audio_to_evaluate", eval),
			text("channel_reference", "2"), text("channel_to_evaluate", "1"), text("calibration", "telephone-channel")}},
		{"10 identify wav", func() error {
			_, err := c.IdentifyAudio(ctx, eval, cands, &daspeak.AudioOptions{Channel: 2})
			return err
		}, "POST", "/identification/wav2credentials", []field{
			file("audio_to_evaluate", eval), text("credential_list", string(candJSON)), text("channel", "2"), text("calibration", "telephone-channel")}},
		{"11 identify credential", func() error {
			_, err := c.IdentifyCredential(ctx, credB.Credential, cands, "")
			return err
		}, "POST", "/identification/credential2credentials", []field{
			text("credential_to_evaluate", credB.Credential), text("credential_list", string(candJSON)), text("calibration", "telephone-channel")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, tc.call())
			got := rec.last(t)
			assert.Equal(t, tc.method, got.method)
			assert.Equal(t, tc.path, got.path)
			if tc.method == "GET" {
				assert.Empty(t, got.parts)
				return
			}
			assert.Equal(t, "multipart/form-data", got.mediaType)
			var want []string
			for _, f := range tc.fields {
				want = append(want, f.name)
			}
			have := slices.Clone(got.order)
			slices.Sort(want)
			slices.Sort(have)
			assert.Equal(t, want, have, "multipart field names")
			for _, f := range tc.fields {
				p, ok := got.parts[f.name]
				if !ok {
					continue
				}
				if f.file != nil {
					assert.True(t, p.file, "%s is a file part", f.name)
					assert.Equal(t, "audio.wav", p.filename, f.name)
					assert.Equal(t, "audio/wav", p.contentType, f.name)
					assert.True(t, bytes.Equal(f.file, p.data), "%s carries the wrong audio", f.name)
					continue
				}
				assert.False(t, p.file, "%s is a text field", f.name)
				assert.Equal(t, f.value, string(p.data), f.name)
			}
		})
	}
	// credential_list is a JSON string of {id, credential} objects.
	var list []map[string]string
	require.NoError(t, json.Unmarshal([]byte(rec.last(t).parts["credential_list"].data), &list))
	assert.Equal(t, []map[string]string{{"id": "a", "credential": credA.Credential}, {"id": "b", "credential": credB.Credential}}, list)
}

// TestClientRedirectDropsCredentials: a redirect to another origin must
// not carry the apikey (net/http forwards custom headers everywhere) nor a
// bearer token.
func TestClientRedirectDropsCredentials(t *testing.T) {
	var mu sync.Mutex
	var seen []http.Header
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(other.Close)
	var sameOrigin bool
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/moved/alive") {
			mu.Lock()
			seen = append(seen, r.Header.Clone())
			mu.Unlock()
			w.WriteHeader(http.StatusOK)
			return
		}
		target := other.URL + r.URL.Path
		if sameOrigin {
			target = strings.TrimSuffix(r.URL.Path, "/alive") + "/moved/alive"
		}
		http.Redirect(w, r, target, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(first.Close)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	redirects := 0
	hc := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		redirects++
		return nil
	}}
	c, err := daspeak.NewClient(&daspeak.ClientOptions{BaseURL: first.URL + daspeak.ServicePath, APIKey: "s3cret", HTTPClient: hc})
	require.NoError(t, err)

	require.NoError(t, c.Alive(context.Background()))
	sameOrigin = true
	require.NoError(t, c.Alive(context.Background()))
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 2)
	assert.Empty(t, seen[0].Get("apikey"), "apikey sent to another origin")
	assert.Equal(t, "s3cret", seen[1].Get("apikey"), "apikey kept on a same-origin redirect")
	assert.Equal(t, 2, redirects, "the HTTPClient's own CheckRedirect still runs")
}
