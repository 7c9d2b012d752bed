package twilio

import (
	"encoding/json"
	"net/url"
	"os"
	"slices"
	"testing"
)

// signatureVectors is twilio/testdata/signature_vectors.json, written by
// internal/twiliovectors/gen.js with the twilio npm package.
type signatureVectors struct {
	TwilioNPMVersion string `json:"twilio_npm_version"`
	Cases            []struct {
		Name      string                     `json:"name"`
		Func      string                     `json:"func"`
		AuthToken string                     `json:"authToken"`
		URL       string                     `json:"url"`
		Params    map[string]json.RawMessage `json:"params"`
		Body      *string                    `json:"body"`
		Signature string                     `json:"signature"`
		Valid     bool                       `json:"valid"`
		Throws    bool                       `json:"throws"`
	} `json:"cases"`
}

// jsParams turns twilio-node's params object (string or string-array
// values) into url.Values.
func jsParams(t *testing.T, raw map[string]json.RawMessage) url.Values {
	t.Helper()
	out := url.Values{}
	for k, v := range raw {
		var s string
		if json.Unmarshal(v, &s) == nil {
			out[k] = []string{s}
			continue
		}
		var a []string
		if err := json.Unmarshal(v, &a); err != nil {
			t.Fatalf("param %q: %v", k, err)
		}
		out[k] = a
	}
	return out
}

// TestSignatureVectorsTwilioNode checks Validate and ValidateBody against
// twilio-node's validateRequest and validateRequestWithBody in both
// directions: every signature twilio-node accepts is accepted and every one
// it rejects (or throws on) is rejected.
func TestSignatureVectorsTwilioNode(t *testing.T) {
	data, err := os.ReadFile("testdata/signature_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs signatureVectors
	if err := json.Unmarshal(data, &vs); err != nil {
		t.Fatal(err)
	}
	if vs.TwilioNPMVersion == "" || len(vs.Cases) < 80 {
		t.Fatalf("vectors: version %q, %d cases", vs.TwilioNPMVersion, len(vs.Cases))
	}
	var accepted, rejected int
	for _, c := range vs.Cases {
		t.Run(c.Name, func(t *testing.T) {
			v := NewValidator(c.AuthToken)
			var got bool
			switch c.Func {
			case "validateRequest":
				got = v.Validate(c.URL, jsParams(t, c.Params), c.Signature)
			case "validateRequestWithBody":
				if c.Body == nil {
					t.Fatal("body case without body")
				}
				got = v.ValidateBody(c.URL, []byte(*c.Body), c.Signature)
			default:
				t.Fatalf("unknown func %q", c.Func)
			}
			want := c.Valid && !c.Throws
			if got != want {
				t.Errorf("url %q signature %q: voicegate %v, twilio-node %s %v (throws %v)",
					c.URL, c.Signature, got, vs.TwilioNPMVersion, c.Valid, c.Throws)
			}
		})
		if c.Valid {
			accepted++
		} else {
			rejected++
		}
	}
	if accepted < 20 || rejected < 20 {
		t.Errorf("vectors too one-sided: %d accepted, %d rejected", accepted, rejected)
	}
}

// The four disagreements found by comparing with twilio-node, with exact
// bytes: each was decided the other way before.
func TestSignatureParityRegressions(t *testing.T) {
	v := NewValidator("12345")
	form := url.Values{"CallSid": {"CA1"}, "From": {"+15551230000"}, "To": {"+15559870000"}}
	bodySig := ComputeSignature("12345", "https://example.com/hook", form)
	for _, tc := range []struct {
		name   string
		url    string
		params url.Values
		sig    string
		want   bool
	}{
		{"body params moved into the query", "https://example.com/hook?CallSid=CA1&From=%2B15551230000&To=%2B15559870000", nil, bodySig, false},
		{"port 443 signature for a :8443 URL", "https://example.com:8443/media?x=1", nil,
			ComputeSignature("12345", "https://example.com:443/media?x=1", nil), false},
		{"host differing in letter case", "https://EXAMPLE.com/hook", nil,
			ComputeSignature("12345", "https://example.com/hook", nil), true},
		{"%27 signed, raw quote configured", "https://example.com/hook?name=O'Brien", nil,
			ComputeSignature("12345", "https://example.com/hook?name=O%27Brien", nil), true},
		{"non-canonical base64 signature", "wss://example.com/media", nil, "7PR3qMkpDyEJtMrVOY/LDyNq8J9=", false},
		{"signature with a trailing newline", "wss://example.com/media", nil, "7PR3qMkpDyEJtMrVOY/LDyNq8J8=\n", false},
	} {
		if got := v.Validate(tc.url, tc.params, tc.sig); got != tc.want {
			t.Errorf("%s: Validate(%q, %q) = %v, want %v", tc.name, tc.url, tc.sig, got, tc.want)
		}
	}
	// bodySHA256 is compared as twilio-node compares it: exactly, lower-case hex.
	const upper = "0A1FF7634D9AB3B95DB5C9A2DFE9416E41502B283A80C7CF19632632F96E6620"
	u := "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=" + upper
	if v.ValidateBody(u, []byte(`{"property": "value", "boolean": true}`), ComputeSignature("12345", u, nil)) {
		t.Error("ValidateBody accepts an upper-case bodySHA256")
	}
}

func TestCompareUTF16(t *testing.T) {
	keys := []string{"z", "\U0001F600", "\uFFFD", "a", ""}
	slices.SortFunc(keys, compareUTF16)
	want := []string{"", "a", "z", "\U0001F600", "\uFFFD"}
	if !slices.Equal(keys, want) {
		t.Errorf("sorted %q, want %q", keys, want)
	}
}
