package agent

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/daspeak"
)

// FuzzRequest feeds arbitrary API bodies to the request decoder, the call
// and caller checks and the session configuration: no panic, and a
// configuration that is accepted is never below the server's floors.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{
		`{"call_id":"CA1","caller_id":"+34911234567"}`,
		`{"call_id":"CA1","caller_id":"+34911234567","audio_total_duration":"5","authenticity_threshold":0.1,"score_threshold":"0.99"}`,
		`{"call_id":"CA1","caller_id":" 34911234567","audio_total_duration":1e308}`,
		`{"call_id":"CA1","caller_id":"sip:+1415@x","score_threshold":"NaN","model_hash":"m"}`,
		`{"call_id":"","caller_id":null,"operation_id":{}}`,
		`[1,2]`, `"x"`, ``, `{"audio_total_duration":"-0"}`,
	} {
		f.Add(s)
	}
	s := &Server{opts: Options{
		Store:    &CredentialStore{},
		Source:   newFakeSource(nil),
		Verify:   &daspeak.Config{AudioTotalDuration: 4 * time.Second, ScoreThreshold: 0.6},
		Register: &daspeak.Config{AuthenticityThreshold: 0.9},
	}}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/agent/verify", strings.NewReader(body))
		req, e := decode(httptest.NewRecorder(), r)
		if e != nil {
			if e.Status != 400 || e.Code != CodeBadRequest {
				t.Fatalf("decode error %+v", e)
			}
			return
		}
		c, e := s.call(r.Context(), req, useRead)
		callerID := c.callerID
		if e != nil {
			if e.Status != 400 {
				t.Fatalf("call error %+v", e)
			}
			return
		}
		if n, err := NormalizeCallerID(callerID); err != nil || n != callerID {
			t.Fatalf("caller id %q not normal", callerID)
		}
		for _, k := range []kind{kindRegister, kindVerify} {
			cfg, e := s.config(k, req)
			if e != nil {
				continue
			}
			floorAuth, floorScore, floorDur := 0.8, 0.6, 4*time.Second
			if k == kindRegister {
				floorAuth, floorScore, floorDur = 0.9, 0.5, 5*time.Second
			}
			if !(cfg.AuthenticityThreshold >= floorAuth && cfg.AuthenticityThreshold <= 1) ||
				!(cfg.ScoreThreshold >= floorScore && cfg.ScoreThreshold <= 1) ||
				cfg.AudioTotalDuration < floorDur || cfg.AudioTotalDuration > daspeak.MaxAudioDuration {
				t.Fatalf("kind %d: config %+v below the floors or out of range", k, cfg)
			}
		}
	})
}

// FuzzEventToken checks that no token but the one signed for an
// operation and call opens it.
func FuzzEventToken(f *testing.F) {
	b := NewBinder([]byte("0123456789abcdef0123456789abcdef"))
	good := b.Sign(time.Hour, "events", "op_1", "CA1")
	f.Add(good, "op_1", "CA1")
	f.Add(good, "op_1", "CA2")
	f.Add(good+"=", "op_1", "CA1")
	f.Add("1.", "", "")
	f.Fuzz(func(t *testing.T, tok, op, call string) {
		err := b.Verify(tok, "events", op, call)
		if err == nil && !(tok == good && op == "op_1" && call == "CA1") {
			// Another valid token can only come from Sign; the fuzzer
			// cannot forge an HMAC, so this is a bug.
			if b.Verify(tok, "events", "op_1", "CA1") == nil && (op != "op_1" || call != "CA1") {
				t.Fatalf("token for op_1/CA1 opens %q/%q", op, call)
			}
			if tok != good {
				t.Fatalf("unsigned token %q verified for %q/%q", tok, op, call)
			}
		}
	})
}
