package daspeak

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// responseSeeds are das-Peak bodies as the service, its gateway and broken
// proxies send them.
var responseSeeds = []string{
	`{"version":"1","models":["a1b2","c3d4"]}`,
	`{"data":{"version":"1","models":["a1b2"]}}`,
	`{"version":"1","data":{"credential":"Q1JFRA==","authenticity":0.9}}`,
	`{"version":"1","model":{"hash":"h","mode":"fake-mode"},"credential":"abc","authenticity":0.991,"input_audio_duration":6.1,"net_speech_duration":4.2}`,
	`{"version":"1","score":0.87,"calibration":"telephone-channel","model":{"hash":"h","mode":"m"},"authenticity_to_evaluate":0.5}`,
	`{"version":"1","calibration":"telephone-channel","scores":[{"id":"a","score":0.1},{"id":"b","score":0.9}],"result":{"id":"b","score":0.9}}`,
	`{"version":"1","metadata":{"hash":"h","description":"d","languages":["es","en"]}}`,
	`{"exception":"VoiceDurationIsNotEnoughException","error":"Voice duration is not enough 2.55s < 3.00s"}`,
	`{"exception":"CalibrationNotAvailable","error":"The calibration studio is not available"}`,
	`{"error":"An internal server error occured","exception":"DaspeakInternalException"}`,
	`{"message":"no Authorization header found"}`,
	`<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>`,
	`{"data":null}`, `{"data":[1,2]}`, `null`, `[]`, `"x"`, ``, `{`, `{"score":"high"}`,
	`{"exception":{"nested":true},"error":12}`, "\xff\xfe{\"error\":\"\xc3\"}",
	`{"exception":"VoiceDurationIsNotEnoughException","error":"s < s"}`,
	`{"exception":"VoiceDurationIsNotEnoughException","error":"Voice duration is not enough NaNs < -1s"}`,
}

func FuzzDecodeResponse(f *testing.F) {
	for _, s := range responseSeeds {
		f.Add(200, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		targets := []any{
			&CredentialResult{}, &CompareResult{}, &AudioCompareResult{}, &IdentifyResult{},
			&struct {
				Models []string `json:"models"`
			}{},
			&struct {
				Metadata *Metadata `json:"metadata"`
			}{},
		}
		for _, out := range targets {
			err := decodeResponse(status, body, out)
			if err == nil {
				continue
			}
			var ae *APIError
			if !errors.Is(err, ErrMalformedResponse) && !errors.As(err, &ae) {
				t.Fatalf("error %v is neither ErrMalformedResponse nor *APIError", err)
			}
			if ae != nil && ae.Exception == "" {
				t.Fatalf("APIError from a success body without exception: %v", ae)
			}
		}
	})
}

func FuzzAPIError(f *testing.F) {
	for _, s := range responseSeeds {
		f.Add(400, []byte(s))
		f.Add(502, []byte(s))
	}
	f.Add(401, []byte(`{"message":"Invalid authentication credentials"}`))
	f.Add(429, []byte(`{"message":"API rate limit exceeded"}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := parseAPIError(status, body)
		if e.Status != status {
			t.Fatalf("status %d, want %d", e.Status, status)
		}
		if len(e.Body) > maxErrorBody {
			t.Fatalf("body kept %d bytes > %d", len(e.Body), maxErrorBody)
		}
		if e.Exception == "" && e.Message == "" {
			t.Fatal("empty message")
		}
		if e.Detected < 0 || e.Required < 0 || e.Detected != e.Detected {
			t.Fatalf("Detected %v Required %v", e.Detected, e.Required)
		}
		_ = e.Error()
		_ = e.Calibration()
		_ = e.ModelHash()
		for _, s := range exceptionSentinels {
			_ = errors.Is(e, s)
		}
	})
}

func TestParseAPIError(t *testing.T) {
	tests := []struct {
		status    int
		body      string
		exception string
		message   string
		detected  float64
		required  float64
		is        error
	}{
		{400, `{"exception":"VoiceDurationIsNotEnoughException","error":"Voice duration is not enough 2.55s < 3.00s"}`,
			"VoiceDurationIsNotEnoughException", "Voice duration is not enough 2.55s < 3.00s", 2.55, 3, ErrNetSpeechTooShort},
		{400, `{"exception":"NoAudioException","error":"No audio input"}`, "NoAudioException", "No audio input", 0, 0, ErrNoAudio},
		{401, `{"message":"no Authorization header found"}`, "", "no Authorization header found", 0, 0, ErrUnauthorized},
		{429, `{"message":"API rate limit exceeded"}`, "", "API rate limit exceeded", 0, 0, ErrRateLimited},
		{500, `{"error":"An internal server error occured","exception":"DaspeakInternalException"}`, "DaspeakInternalException", "An internal server error occured", 0, 0, ErrInternal},
		{502, "<html>\r\n<body>\r\n<h1>Bad   gateway</h1>\r\n</body></html>", "", "Bad Gateway: Bad gateway", 0, 0, nil},
		{504, "", "", "Gateway Timeout", 0, 0, nil},
		{599, "upstream\x00reset", "", "status 599: upstream reset", 0, 0, nil},
		{400, `{"exception":"AudioInputException","error":"The sample rate is not supported, must be 8 Khz or 16 Khz"}`, "AudioInputException",
			"The sample rate is not supported, must be 8 Khz or 16 Khz", 0, 0, ErrSampleRate},
		{400, `{"exception":"X","error":{"code":7}}`, "X", `{"code":7}`, 0, 0, nil},
	}
	for _, tc := range tests {
		e := parseAPIError(tc.status, []byte(tc.body))
		if e.Exception != tc.exception || e.Message != tc.message || e.Detected != tc.detected || e.Required != tc.required {
			t.Errorf("%d %q: got %+v", tc.status, tc.body, e)
		}
		if tc.is != nil && !errors.Is(e, tc.is) {
			t.Errorf("%q: not %v", tc.body, tc.is)
		}
	}
	long := parseAPIError(502, []byte(strings.Repeat("x", 100000)))
	if len(long.Body) != maxErrorBody || len(long.Message) > maxErrorMessage+len("Bad Gateway: ")+len("…") {
		t.Errorf("long body kept %d bytes, message %d bytes", len(long.Body), len(long.Message))
	}
	// A 401 with a das-Peak exception is mapped by the exception only.
	if e := parseAPIError(401, []byte(`{"exception":"InvalidCredential","error":"Decryption error"}`)); errors.Is(e, ErrUnauthorized) || !errors.Is(e, ErrInvalidCredential) {
		t.Errorf("401 InvalidCredential mapped by status: %v", e)
	}
	// Finer AudioInputException kinds do not leak into other exceptions.
	if e := NewAPIError(400, ExceptionInsufficientQuality, "sample rate"); errors.Is(e, ErrSampleRate) || errors.Is(e, ErrAudioInput) {
		t.Errorf("kind matched on another exception: %v", e)
	}
}

func TestDecodeResponseEnvelope(t *testing.T) {
	type models struct {
		Version string   `json:"version"`
		Models  []string `json:"models"`
	}
	tests := []struct {
		body string
		want []string
		ok   bool
	}{
		{`{"version":"1","models":["a"]}`, []string{"a"}, true},
		{`{"data":{"models":["b"]}}`, []string{"b"}, true},
		{`{"version":"1","data":{"models":["c"]}}`, []string{"c"}, true},
		// "data" next to other fields is an ordinary field, not an envelope.
		{`{"models":["d"],"data":{"models":["x"]}}`, []string{"d"}, true},
		{`{"data":"text"}`, nil, true},
		{` null `, nil, false},
		{`[]`, nil, false},
		{`{"models":"a"}`, nil, false},
	}
	for _, tc := range tests {
		var m models
		err := decodeResponse(200, []byte(tc.body), &m)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v", tc.body, err)
			continue
		}
		if tc.ok && strings.Join(m.Models, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: models %v, want %v", tc.body, m.Models, tc.want)
		}
	}
	err := decodeResponse(200, []byte(`{"exception":"InsufficientQuality","error":"The audio quality is not good enough"}`), &models{})
	if !errors.Is(err, ErrInsufficientQuality) {
		t.Errorf("exception in a 200 body: %v", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		v    string
		want time.Duration
	}{
		{"", 0}, {"0", 0}, {"-3", 0}, {"abc", 0}, {" 7 ", 7 * time.Second},
		{"99999999", 24 * time.Hour},
		{now.Add(90 * time.Second).UTC().Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).UTC().Format(http.TimeFormat), 0},
	}
	for _, tc := range tests {
		if got := parseRetryAfter(tc.v, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.v, got, tc.want)
		}
	}
}

func TestClientBackoff(t *testing.T) {
	c, err := NewClient(&ClientOptions{RetryBackoff: 100 * time.Millisecond, MaxRetryBackoff: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for attempt, max := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		max *= time.Millisecond
		for range 50 {
			d := c.backoff(attempt)
			if d < max/2 || d > max {
				t.Fatalf("attempt %d: backoff %v outside [%v, %v]", attempt, d, max/2, max)
			}
		}
	}
	if d := c.backoff(200); d < 500*time.Millisecond || d > time.Second {
		t.Fatalf("attempt 200: backoff %v", d)
	}
}

func TestMetadataJSON(t *testing.T) {
	var m Metadata
	if err := m.UnmarshalJSON([]byte(`{"hash":"h","description":"d","languages":["es"],"size":3}`)); err != nil {
		t.Fatal(err)
	}
	if m.Hash != "h" || m.Description != "d" || string(m.Extra["languages"]) != `["es"]` || len(m.Extra) != 2 {
		t.Fatalf("%+v", m)
	}
	b, err := m.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"description":"d","hash":"h","languages":["es"],"size":3}` {
		t.Fatalf("%s", b)
	}
	if err := m.UnmarshalJSON([]byte(`[1]`)); err == nil {
		t.Fatal("array accepted")
	}
}
