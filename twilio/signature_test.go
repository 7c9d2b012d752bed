package twilio

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// Spec §2.2: auth token 12345.
var sigParams = url.Values{
	"CallSid": {"CA1234567890ABCDE"},
	"Caller":  {"+14158675309"},
	"Digits":  {"1234"},
	"From":    {"+14158675309"},
	"To":      {"+18005551212"},
}

const sigURL = "https://mycompany.com/myapp.php?foo=1&bar=2"

func TestSignatureVectors(t *testing.T) {
	withReason := url.Values{"Reason": {"Participant"}, "ReasonConferenceEnded": {"test"}}
	for k, v := range sigParams {
		withReason[k] = v
	}
	for _, tc := range []struct {
		url    string
		params url.Values
		want   string
	}{
		{sigURL, sigParams, "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
		{sigURL, withReason, "vOEb5UThFn24KEfnOFLQY2AE5FY="},
		{sigURL + "&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620", nil, "a9nBmqA0ju/hNViExpshrM61xv4="},
		{"wss://example.com/media", nil, "7PR3qMkpDyEJtMrVOY/LDyNq8J8="},
		{"wss://example.com:443/media", nil, "zyyJQiPZXIGCLy3HYdHEfry0yDg="},
		{"wss://example.com/media/", nil, "T+WBXwUXC0/CyoZ1DA+p9ilZORs="},
		{"https://example.com/media", nil, "6HZQ7Cq/dSYDCAiy3qRA6PZfACI="},
	} {
		if got := ComputeSignature("12345", tc.url, tc.params); got != tc.want {
			t.Errorf("ComputeSignature(%s) = %s, want %s", tc.url, got, tc.want)
		}
		if !NewValidator("12345").Validate(tc.url, tc.params, tc.want) {
			t.Errorf("Validate(%s) = false", tc.url)
		}
	}
	v := NewValidator("12345")
	body := []byte(`{"property": "value", "boolean": true}`)
	bodyURL := sigURL + "&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
	if !v.ValidateBody(bodyURL, body, "a9nBmqA0ju/hNViExpshrM61xv4=") {
		t.Error("ValidateBody rejects the spec vector")
	}
	if v.ValidateBody(bodyURL, append(body, ' '), "a9nBmqA0ju/hNViExpshrM61xv4=") {
		t.Error("ValidateBody accepts a changed body")
	}
	if v.ValidateBody(sigURL, body, "a9nBmqA0ju/hNViExpshrM61xv4=") {
		t.Error("ValidateBody accepts a URL without bodySHA256")
	}
}

// Signature 7PR3… of wss://example.com/media against configured URLs, as
// twilio-node 6.3.1 decides (see signature_vectors.json for the full set).
func TestSignatureURLVariants(t *testing.T) {
	const sig = "7PR3qMkpDyEJtMrVOY/LDyNq8J8="
	v := NewValidator("12345")
	for _, tc := range []struct {
		url  string
		want bool
	}{
		{"wss://example.com/media", true},
		{"wss://example.com:443/media", true},
		{"https://example.com/media", false},
		{"wss://example.com/media/", false},
		{"wss://example.com:8443/media", true}, // port removed
		{"ws://example.com/media", false},
		{"wss://EXAMPLE.com/media", true}, // host normalised to lower case
		{"WSS://example.com/media", true},
	} {
		if got := v.Validate(tc.url, nil, sig); got != tc.want {
			t.Errorf("Validate(%s) = %v, want %v", tc.url, got, tc.want)
		}
	}
	// twilio-node adds ":80", not ":443", to a wss URL without port, so a
	// signature of the URL with :443 does not validate the port-less URL.
	if v.Validate("wss://example.com/media", nil, "zyyJQiPZXIGCLy3HYdHEfry0yDg=") {
		t.Error(":443 signature accepted for port-less wss URL")
	}
	if !v.Validate("wss://example.com/media", nil, ComputeSignature("12345", "wss://example.com:80/media", nil)) {
		t.Error(":80 signature rejected for port-less wss URL")
	}
	// The query is never moved into the parameters.
	sigQ := ComputeSignature("12345", "wss://example.com/media", url.Values{"x": {"1"}})
	if v.Validate("wss://example.com/media?x=1", nil, sigQ) {
		t.Error("query-as-params variant accepted")
	}
	for _, bad := range []string{"", "not base64!", "AAAA", strings.Repeat("A", 28)} {
		if v.Validate("wss://example.com/media", nil, bad) {
			t.Errorf("signature %q accepted", bad)
		}
	}
	if (*Validator)(nil).Validate("wss://example.com/media", nil, sig) || NewValidator("").Validate("wss://example.com/media", nil, sig) {
		t.Error("validator without tokens accepts")
	}
}

func TestSignatureRotation(t *testing.T) {
	v := NewValidator("old-token", "new-token")
	for _, tok := range []string{"old-token", "new-token"} {
		if !v.Validate("wss://x.example/m", nil, ComputeSignature(tok, "wss://x.example/m", nil)) {
			t.Errorf("token %s rejected", tok)
		}
	}
	if v.Validate("wss://x.example/m", nil, ComputeSignature("other", "wss://x.example/m", nil)) {
		t.Error("foreign token accepted")
	}
}

func TestUpgradeURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://a.example/m": "wss://a.example/m",
		"http://a.example/m":  "ws://a.example/m",
		"wss://a.example/m":   "wss://a.example/m",
		"":                    "",
	} {
		if got := upgradeURL(in); got != want {
			t.Errorf("upgradeURL(%q) = %q", in, got)
		}
	}
}

func TestValidateRequest(t *testing.T) {
	const pub = "https://vb.example.com/twilio/stream-status"
	form := url.Values{"StreamSid": {"MZ1"}, "StreamEvent": {"stream-started"}}
	r := httptest.NewRequest(http.MethodPost, "/twilio/stream-status", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set(SignatureHeader, ComputeSignature("tok", pub, form))
	if err := NewValidator("tok").ValidateRequest(r, pub); err != nil {
		t.Fatal(err)
	}
	r = httptest.NewRequest(http.MethodPost, "/twilio/stream-status", strings.NewReader(form.Encode()+"&Extra=1"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set(SignatureHeader, ComputeSignature("tok", pub, form))
	if err := NewValidator("tok").ValidateRequest(r, pub); err == nil {
		t.Fatal("tampered form accepted")
	}
}

// A webhook whose URL carries bodySHA256 is validated by its body hash, as
// twilio-node's validateIncomingRequest does; the body stays readable.
func TestValidateRequestBodySHA256(t *testing.T) {
	const body = `{"property": "value", "boolean": true}`
	pub := sigURL + "&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
	v := NewValidator("12345")
	for _, tc := range []struct {
		name string
		body string
		ok   bool
	}{
		{"body matches", body, true},
		{"body changed", body + " ", false},
		{"empty body", "", false},
		{"too large", strings.Repeat("x", MaxSignedBodyBytes+1), false},
	} {
		r := httptest.NewRequest(http.MethodPost, "/myapp.php", strings.NewReader(tc.body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set(SignatureHeader, "a9nBmqA0ju/hNViExpshrM61xv4=")
		err := v.ValidateRequest(r, pub)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v", tc.name, err)
		}
		if tc.ok {
			if b, _ := io.ReadAll(r.Body); string(b) != body {
				t.Errorf("%s: body after validation %q", tc.name, b)
			}
		}
	}
}

// BenchmarkValidate measures one upgrade or webhook check: every candidate
// URL under one token.
func BenchmarkValidate(b *testing.B) {
	v := NewValidator("12345")
	const u = "wss://vb.example.com/twilio/media"
	sig := ComputeSignature("12345", u, nil)
	b.ReportAllocs()
	for b.Loop() {
		if !v.Validate(u, nil, sig) {
			b.Fatal("rejected")
		}
	}
}

func BenchmarkValidateForm(b *testing.B) {
	v := NewValidator("12345")
	sig := ComputeSignature("12345", sigURL, sigParams)
	b.ReportAllocs()
	for b.Loop() {
		if !v.Validate(sigURL, sigParams, sig) {
			b.Fatal("rejected")
		}
	}
}
