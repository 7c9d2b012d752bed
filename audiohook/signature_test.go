package audiohook

import (
	"crypto/hmac"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/audiohook/wire"
)

const (
	docAPIKey  = "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh"
	docSecret  = "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU="
	docOrg     = "d7934305-0972-4844-938e-9060eef73d05"
	docCorr    = "e160e428-53e2-487c-977d-96989bf5c99d"
	docSession = "30b0e395-84d3-4570-ac13-9a62d8f514c0"
	docNonce   = "VGhpc0lzQVVuaXF1ZU5vbmNl"
	docSigIn   = `sig1=("@request-target" "@authority" "audiohook-organization-id" "audiohook-session-id" "audiohook-correlation-id" "x-api-key");keyid="SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh";nonce="VGhpc0lzQVVuaXF1ZU5vbmNl";alg="hmac-sha256";created=1641013200;expires=3282026430`
	docSig     = "sig1=:NZBwyBHRRyRoeLqy1IzOa9VYBuI8TgMFt2GRDkDuJh4=:"
)

func docRequest() *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/voicebiometrics/ws", nil)
	r.Host = "audiohook.example.com"
	r.Header.Set(wire.HeaderOrganizationID, docOrg)
	r.Header.Set(wire.HeaderCorrelationID, docCorr)
	r.Header.Set(wire.HeaderSessionID, docSession)
	r.Header.Set(wire.HeaderAPIKey, docAPIKey)
	return r
}

func mustB64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func docInput(components []string) *signatureInput {
	return &signatureInput{Label: "sig1", Components: components, Params: []signatureParam{
		{Name: "keyid", Value: docAPIKey}, {Name: "nonce", Value: docNonce}, {Name: "alg", Value: "hmac-sha256"},
		{Name: "created", Value: int64(1641013200)}, {Name: "expires", Value: int64(3282026430)},
	}}
}

func TestSignatureVectors(t *testing.T) {
	hostComponents := append([]string(nil), signatureComponents...)
	hostComponents[1] = "host"
	tests := []struct {
		name string
		req  func() *http.Request
		in   *signatureInput
		key  string
		want string
		base string
	}{
		{name: "doc example", req: docRequest, in: docInput(signatureComponents), key: docSecret,
			want: "NZBwyBHRRyRoeLqy1IzOa9VYBuI8TgMFt2GRDkDuJh4=",
			base: "\"@request-target\": /api/v1/voicebiometrics/ws\n\"@authority\": audiohook.example.com\n" +
				"\"audiohook-organization-id\": d7934305-0972-4844-938e-9060eef73d05\n" +
				"\"audiohook-session-id\": 30b0e395-84d3-4570-ac13-9a62d8f514c0\n" +
				"\"audiohook-correlation-id\": e160e428-53e2-487c-977d-96989bf5c99d\n" +
				"\"x-api-key\": SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh\n" +
				"\"@signature-params\": (\"@request-target\" \"@authority\" \"audiohook-organization-id\" \"audiohook-session-id\" \"audiohook-correlation-id\" \"x-api-key\");keyid=\"SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh\";nonce=\"VGhpc0lzQVVuaXF1ZU5vbmNl\";alg=\"hmac-sha256\";created=1641013200;expires=3282026430"},
		{name: "host component", req: docRequest, in: docInput(hostComponents), key: docSecret,
			want: "zupMJUMfd/kMuvKc5zhRyfJPE3jTROuz1S1hn8SCTpE="},
		{name: "draft-11 B.2.5", req: func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/foo?param=Value&Pet=dog", nil)
			r.Host = "example.com"
			r.Header.Set("Date", "Tue, 20 Apr 2021 02:07:55 GMT")
			r.Header.Set("Content-Type", "application/json")
			return r
		}, in: &signatureInput{Label: "sig-b25", Components: []string{"date", "@authority", "content-type"},
			Params: []signatureParam{{Name: "created", Value: int64(1618884473)}, {Name: "keyid", Value: "test-shared-secret"}}},
			key:  "uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==",
			want: "pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=",
			base: "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n\"@authority\": example.com\n\"content-type\": application/json\n" +
				"\"@signature-params\": (\"date\" \"@authority\" \"content-type\");created=1618884473;keyid=\"test-shared-secret\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.req()
			base, err := signatureBase(r, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if tt.base != "" && string(base) != tt.base {
				t.Fatalf("base:\n%s\nwant:\n%s", base, tt.base)
			}
			if got := base64.StdEncoding.EncodeToString(hmacSHA256(mustB64(t, tt.key), base)); got != tt.want {
				t.Fatalf("signature %s, want %s", got, tt.want)
			}
			// Signing sets headers that parse back to the same input and value.
			if err := signRequestWith(r, mustB64(t, tt.key), tt.in); err != nil {
				t.Fatal(err)
			}
			if got, want := r.Header.Get(wire.HeaderSignature), tt.in.Label+"=:"+tt.want+":"; got != want {
				t.Fatalf("Signature header %q, want %q", got, want)
			}
			ins, err := parseSignatureInput(r.Header.Get(wire.HeaderSignatureInput))
			if err != nil || len(ins) != 1 || ins[0].String() != tt.in.String() {
				t.Fatalf("round trip: %v %+v", err, ins)
			}
		})
	}
}

// TestVerifySignatureVectors verifies the spec's three vectors from their
// wire form: the headers are parsed, the signature base is rebuilt from the
// parsed Signature-Input and the HMAC compared. A changed byte in a header
// or a different key must fail.
func TestVerifySignatureVectors(t *testing.T) {
	b25 := func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/foo?param=Value&Pet=dog", nil)
		r.Host = "example.com"
		r.Header.Set("Date", "Tue, 20 Apr 2021 02:07:55 GMT")
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	tests := []struct {
		name, input, sig, key string
		req                   func() *http.Request
	}{
		{"doc example", docSigIn, docSig, docSecret, docRequest},
		{"host component", strings.Replace(docSigIn, `"@authority"`, `"host"`, 1),
			"sig1=:zupMJUMfd/kMuvKc5zhRyfJPE3jTROuz1S1hn8SCTpE=:", docSecret, docRequest},
		{"draft-11 B.2.5", `sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"`,
			"sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:",
			"uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==", b25},
	}
	verify := func(r *http.Request, input, sig string, key []byte) bool {
		ins, err := parseSignatureInput(input)
		if err != nil || len(ins) != 1 {
			t.Fatalf("Signature-Input %q: %v", input, err)
		}
		sigs, err := parseSignature(sig)
		if err != nil {
			t.Fatalf("Signature %q: %v", sig, err)
		}
		base, err := signatureBase(r, &ins[0])
		if err != nil {
			t.Fatal(err)
		}
		return hmac.Equal(hmacSHA256(key, base), sigs[ins[0].Label])
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := mustB64(t, tt.key)
			if !verify(tt.req(), tt.input, tt.sig, key) {
				t.Fatal("vector does not verify")
			}
			if verify(tt.req(), strings.Replace(tt.input, "created=16", "created=26", 1), tt.sig, key) {
				t.Fatal("changed created still verifies")
			}
			r := tt.req()
			r.Host = "other.example.com"
			if verify(r, tt.input, tt.sig, key) {
				t.Fatal("changed authority still verifies")
			}
			if verify(tt.req(), tt.input, tt.sig, key[1:]) {
				t.Fatal("other key still verifies")
			}
		})
	}
	// The AudioHook policy requires @authority: the host variant is refused.
	r := docRequest()
	r.Header.Set(wire.HeaderSignatureInput, tests[1].input)
	r.Header.Set(wire.HeaderSignature, tests[1].sig)
	now := func() time.Time { return time.Unix(1641013200, 0) }
	if _, err := verifyRequest(r, mustB64(t, docSecret), &verifyOptions{Now: now}); !errors.Is(err, ErrSignature) {
		t.Fatalf("host variant: %v, want ErrSignature", err)
	}
}

// TestSignatureBaseAuthorityAndTarget checks the components that differ
// from the doc example: @authority keeps a non-default port and
// @request-target keeps the query string.
func TestSignatureBaseAuthorityAndTarget(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/audiohook/ws?tenant=a%20b", nil)
	r.Host = "127.0.0.1:8099"
	for k, v := range docRequest().Header {
		r.Header[k] = v
	}
	base, err := signatureBase(r, docInput(signatureComponents))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\"@request-target\": /audiohook/ws?tenant=a%20b\n", "\"@authority\": 127.0.0.1:8099\n"} {
		if !strings.Contains(string(base), want) {
			t.Fatalf("base\n%s\nlacks %q", base, want)
		}
	}
	// A client-built request (no RequestURI) gives the same base.
	r2 := &http.Request{Method: http.MethodGet, URL: mustParseURL(t, "ws://127.0.0.1:8099/audiohook/ws?tenant=a%20b"), Host: "127.0.0.1:8099", Header: r.Header}
	base2, err := signatureBase(r2, docInput(signatureComponents))
	if err != nil || string(base2) != string(base) {
		t.Fatalf("client base\n%s\nwant\n%s (%v)", base2, base, err)
	}
}

func TestVerifyDocExample(t *testing.T) {
	r := docRequest()
	r.Header.Set(wire.HeaderSignature, docSig)
	r.Header.Set(wire.HeaderSignatureInput, docSigIn)
	now := func() time.Time { return time.Unix(1641013200+2, 0) }
	if _, err := verifyRequest(r, mustB64(t, docSecret), &verifyOptions{Now: now}); err != nil {
		t.Fatalf("doc example: %v", err)
	}
	// Header names are case-insensitive: the reference client sends them lowercase.
	r2 := docRequest()
	r2.Header["signature-input"] = []string{docSigIn}
	r2.Header["signature"] = []string{docSig}
	r2.Header = http.Header{}
	for k, v := range docRequest().Header {
		r2.Header[k] = v
	}
	r2.Header.Set("signature-input", docSigIn)
	r2.Header.Set("signature", docSig)
	if _, err := verifyRequest(r2, mustB64(t, docSecret), &verifyOptions{Now: now}); err != nil {
		t.Fatalf("lowercase: %v", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	secret := mustB64(t, docSecret)
	base := time.Unix(time.Now().Unix(), 0)
	sign := func(mod func(r *http.Request, in *signatureInput)) *http.Request {
		r := docRequest()
		in := docInput(append([]string(nil), signatureComponents...))
		in.Params[3].Value = base.Unix()
		in.Params[4].Value = base.Unix() + 30
		if mod != nil {
			mod(r, in)
		}
		if err := signRequestWith(r, secret, in); err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		name  string
		req   *http.Request
		now   time.Time
		nonce NonceCache
		want  error
	}{
		{"valid", sign(nil), base, nil, nil},
		{"valid 6 s later", sign(nil), base.Add(6 * time.Second), nil, nil},
		{"too old", sign(nil), base.Add(8 * time.Second), nil, ErrSignature},
		{"future", sign(nil), base.Add(-4 * time.Second), nil, ErrSignature},
		{"expired", sign(func(_ *http.Request, in *signatureInput) { in.Params[4].Value = base.Unix() + 2 }), base, nil, ErrSignature},
		{"short nonce", sign(func(_ *http.Request, in *signatureInput) { in.Params[1].Value = "abc" }), base, nil, ErrSignature},
		{"wrong alg", sign(func(_ *http.Request, in *signatureInput) { in.Params[2].Value = "hmac-sha512" }), base, nil, ErrSignature},
		{"keyid mismatch", sign(func(_ *http.Request, in *signatureInput) { in.Params[0].Value = "other" }), base, nil, ErrSignature},
		{"unknown param", sign(func(_ *http.Request, in *signatureInput) {
			in.Params = append(in.Params, signatureParam{Name: "tag", Value: "x"})
		}), base, nil, ErrSignature},
		{"missing component", sign(func(_ *http.Request, in *signatureInput) { in.Components = in.Components[:5] }), base, nil, ErrSignature},
		{"missing created", sign(func(_ *http.Request, in *signatureInput) {
			in.Params = append(in.Params[:3:3], in.Params[4])
		}), base, nil, ErrSignature},
		{"tampered header", func() *http.Request {
			r := sign(nil)
			r.Header.Set(wire.HeaderOrganizationID, docCorr)
			return r
		}(), base, nil, ErrSignature},
		{"tampered path", func() *http.Request {
			r := sign(nil)
			r.RequestURI = "/other"
			return r
		}(), base, nil, ErrSignature},
		{"unsigned", docRequest(), base, nil, ErrSignature},
		{"garbage input", func() *http.Request {
			r := sign(nil)
			r.Header.Set(wire.HeaderSignatureInput, "sig1=(((")
			return r
		}(), base, nil, ErrSignature},
		{"label mismatch", func() *http.Request {
			r := sign(nil)
			r.Header.Set(wire.HeaderSignature, "sig2=:AAAA:")
			return r
		}(), base, nil, ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := tt.now
			_, err := verifyRequest(tt.req, secret, &verifyOptions{Now: func() time.Time { return now }, Nonces: tt.nonce})
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("replay", func(t *testing.T) {
		cache := NewMemoryNonces(4)
		r := sign(nil)
		opts := &verifyOptions{Now: func() time.Time { return base }, Nonces: cache}
		if _, err := verifyRequest(r, secret, opts); err != nil {
			t.Fatal(err)
		}
		if _, err := verifyRequest(r, secret, opts); !errors.Is(err, ErrReplay) {
			t.Fatalf("second use: %v, want ErrReplay", err)
		}
	})
}

func TestSignRequestGenesysShape(t *testing.T) {
	r := docRequest()
	now := time.Unix(1641013200, 0)
	if err := SignRequest(r, mustB64(t, docSecret), now, docNonce); err != nil {
		t.Fatal(err)
	}
	want := `sig1=("@request-target" "@authority" "audiohook-organization-id" "audiohook-session-id" "audiohook-correlation-id" "x-api-key");keyid="SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh";nonce="VGhpc0lzQVVuaXF1ZU5vbmNl";alg="hmac-sha256";created=1641013200;expires=1641013230`
	if got := r.Header.Get(wire.HeaderSignatureInput); got != want {
		t.Fatalf("Signature-Input\n%s\nwant\n%s", got, want)
	}
	if _, err := verifyRequest(r, mustB64(t, docSecret), &verifyOptions{Now: func() time.Time { return now }}); err != nil {
		t.Fatal(err)
	}
	if n := newNonce(); len(n) != 24 {
		t.Fatalf("nonce %q has %d chars, want 24", n, len(n))
	}
}

func FuzzSignatureHeaders(f *testing.F) {
	f.Add(docSigIn, docSig)
	f.Add(`sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"`, "sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:")
	f.Add(`a=(), b=("x";p=1);q=?0;r=tok/en, c`, `a=:YWJj:, b=?1`)
	f.Add(`sig1=("\"\\");x=-12`, `sig1=:====:`)
	secret := mustB64(f, docSecret)
	f.Fuzz(func(t *testing.T, input, sig string) {
		ins, err := parseSignatureInput(input)
		if err == nil {
			for _, in := range ins {
				again, err := parseSignatureInput(in.Label + "=" + in.String())
				if err != nil || len(again) != 1 || again[0].String() != in.String() {
					t.Fatalf("re-encoding %q of %q does not round trip: %v", in.String(), input, err)
				}
			}
		}
		_, _ = parseSignature(sig)
		r := docRequest()
		r.Header.Set(wire.HeaderSignatureInput, input)
		r.Header.Set(wire.HeaderSignature, sig)
		_, _ = verifyRequest(r, secret, &verifyOptions{Now: func() time.Time { return time.Unix(1641013200, 0) }})
	})
}

// docNonce2Sig signs the doc example with nonce docNonce2 instead of
// docNonce (same key, created and expires; computed with Python hmac).
const (
	docNonce2    = "QW5vdGhlck5vbmNlVmFsdWUx"
	docNonce2Sig = "sig1=:3eAIUP+31UwK3BLVfTdidi3SIeLnPvN6vMp4NkK9Je8=:"
	// docEmptyKeySig signs the doc example with the empty key.
	docEmptyKeySig = "sig1=:oiDJ2fG9mfSWw5RivwXCQ1sAJKeUUKrI+HVlYaKTopk=:"
)

// docSigned returns the doc example request with the given Signature and
// the nonce replaced in its Signature-Input.
func docSigned(nonce, sig string) *http.Request {
	r := docRequest()
	r.Header.Set(wire.HeaderSignatureInput, strings.Replace(docSigIn, docNonce, nonce, 1))
	r.Header.Set(wire.HeaderSignature, sig)
	return r
}

// TestAuthenticateKeyPolicy pins which requests authenticate for keys with
// and without a secret. A key configured with an empty secret accepts
// unsigned requests, but a signature that is present must verify (the
// reference server verifies it with the empty key and answers disconnect
// "unauthorized" otherwise).
func TestAuthenticateKeyPolicy(t *testing.T) {
	docNow := func() time.Time { return time.Unix(1641013200, 0) }
	withSecret := StaticKeys{docAPIKey: mustB64(t, docSecret)}
	noSecret := StaticKeys{docAPIKey: nil}
	fromJSON, err := KeysFromJSON([]byte(`{"` + docAPIKey + `":""}`))
	if err != nil {
		t.Fatal(err)
	}
	inputOnly := docRequest()
	inputOnly.Header.Set(wire.HeaderSignatureInput, docSigIn)
	sigOnly := docRequest()
	sigOnly.Header.Set(wire.HeaderSignature, docSig)
	tests := []struct {
		name string
		keys KeyStore
		req  *http.Request
		want error
	}{
		{"secret, doc signature", withSecret, docSigned(docNonce, docSig), nil},
		{"secret, unsigned", withSecret, docRequest(), ErrSignature},
		{"secret, signed with the empty key", withSecret, docSigned(docNonce, docEmptyKeySig), ErrSignature},
		{"empty secret, unsigned", noSecret, docRequest(), nil},
		{"empty secret, signed with another secret", noSecret, docSigned(docNonce, docSig), ErrSignature},
		{"empty secret from JSON, signed with another secret", fromJSON, docSigned(docNonce, docSig), ErrSignature},
		{"empty secret, signed with the empty key", noSecret, docSigned(docNonce, docEmptyKeySig), nil},
		{"empty secret, Signature-Input only", noSecret, inputOnly, ErrSignature},
		{"empty secret, Signature only", noSecret, sigOnly, ErrSignature},
		{"empty secret, garbage signature", noSecret, docSigned(docNonce, "sig1=:AAAA:"), ErrSignature},
		{"unknown key, signed", StaticKeys{"other": nil}, docSigned(docNonce, docSig), ErrUnauthorized},
		{"unknown key, unsigned", StaticKeys{"other": nil}, docRequest(), ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := (&ServerOptions{Keys: tt.keys, Now: docNow}).withDefaults()
			err := authenticate(tt.req, &o)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
}
