package twilio

import (
	"bytes"
	"cmp"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// SignatureHeader is the HTTP header that carries Twilio's request signature.
const SignatureHeader = "X-Twilio-Signature"

// ComputeSignature returns the X-Twilio-Signature Twilio computes for a
// request to rawURL with the given POST parameters:
// base64(HMAC-SHA1(authToken, rawURL + each key + value, keys sorted)).
// For a WebSocket upgrade params is nil and rawURL is the wss:// URL.
func ComputeSignature(authToken, rawURL string, params url.Values) string {
	mac := hmac.New(sha1.New, []byte(authToken))
	io.WriteString(mac, rawURL)
	writeSortedParams(mac, params)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// writeSortedParams writes each parameter name and value, names sorted and
// each name's values sorted and de-duplicated, as twilio-node does. Sorting
// follows JavaScript's Array.prototype.sort: by UTF-16 code units, which
// differs from Go's byte order for characters above U+FFFF.
func writeSortedParams(w io.Writer, params url.Values) {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareUTF16)
	for _, k := range keys {
		vs := slices.Clone(params[k])
		slices.SortFunc(vs, compareUTF16)
		for i, v := range vs {
			if i > 0 && v == vs[i-1] {
				continue
			}
			io.WriteString(w, k)
			io.WriteString(w, v)
		}
	}
}

// compareUTF16 orders strings by their UTF-16 code units, as JavaScript
// compares strings. Strings that compare equal that way but differ in bytes
// (invalid UTF-8) are ordered by bytes, so the order is total.
func compareUTF16(a, b string) int {
	x, y := a, b
	for x != "" && y != "" {
		ra, na := utf8.DecodeRuneInString(x)
		rb, nb := utf8.DecodeRuneInString(y)
		if ra != rb {
			if ua, ub := firstUTF16Unit(ra), firstUTF16Unit(rb); ua != ub {
				return cmp.Compare(ua, ub)
			}
			return cmp.Compare(ra, rb)
		}
		x, y = x[na:], y[nb:]
	}
	switch {
	case x == "" && y != "":
		return -1
	case x != "" && y == "":
		return 1
	}
	return strings.Compare(a, b)
}

func firstUTF16Unit(r rune) rune {
	if r >= 0x10000 && r <= utf8.MaxRune {
		return 0xd800 + (r-0x10000)>>10
	}
	return r
}

// Validator checks X-Twilio-Signature values. It holds one or more auth
// tokens and accepts a signature made with any of them, so a primary and a
// secondary token can both be valid while an auth token is rotated.
//
// A Validator is safe for concurrent use.
type Validator struct {
	tokens []string
}

// NewValidator returns a Validator for the given auth tokens. Empty tokens
// are ignored.
func NewValidator(authTokens ...string) *Validator {
	v := &Validator{}
	for _, t := range authTokens {
		if t != "" {
			v.tokens = append(v.tokens, t)
		}
	}
	return v
}

// Validate reports whether signature, the X-Twilio-Signature header as
// received, is a valid signature of a request to rawURL, the webhook URL as
// configured at Twilio (with its query), with the POST parameters params
// (nil for GET requests and WebSocket upgrades), under one of the tokens.
//
// It accepts exactly what twilio-node's validateRequest (npm twilio 6.3.1)
// accepts; twilio/testdata/signature_vectors.json, generated with it, pins
// the behaviour. The signature must equal, as a string, the base64 HMAC-SHA1
// of one of these URLs followed by the sorted parameters:
//   - rawURL as given, without its port and with the scheme's port added
//     when it has none (":443" for https, ":80" for every other scheme,
//     wss included);
//   - rawURL normalised as a WHATWG URL (lower-case scheme and host, default
//     port dropped, path, query and fragment percent-encoded), without and
//     with the added port, each also with its query re-encoded as Node's
//     querystring module does.
//
// Query parameters are never moved into params, nor params into the query:
// a signature of a POST body does not validate the same parameters sent in
// the query string. Comparison is constant-time.
func (v *Validator) Validate(rawURL string, params url.Values, signature string) bool {
	if v == nil || len(v.tokens) == 0 || signature == "" {
		return false
	}
	ok := 0
	for _, cand := range signedURLCandidates(rawURL) {
		for _, tok := range v.tokens {
			ok |= checkSignature(tok, cand, params, signature)
		}
	}
	return ok == 1
}

// checkSignature returns 1 when signature is the base64 signature of u and
// params under token, else 0.
func checkSignature(token, u string, params url.Values, signature string) int {
	mac := hmac.New(sha1.New, []byte(token))
	io.WriteString(mac, u)
	writeSortedParams(mac, params)
	var sum [sha1.Size]byte
	var want [28]byte // base64 of 20 bytes
	base64.StdEncoding.Encode(want[:], mac.Sum(sum[:0]))
	return subtle.ConstantTimeCompare(want[:], []byte(signature))
}

// ValidateBody validates a request whose body is not form data (for example
// JSON), as twilio-node's validateRequestWithBody does: the signature
// covers rawURL alone (with the URL variants of Validate), and the first
// bodySHA256 query parameter of rawURL must equal the lower-case hex
// SHA-256 of body. A rawURL that does not parse as a URL is rejected.
func (v *Validator) ValidateBody(rawURL string, body []byte, signature string) bool {
	href, ok := whatwgHref(rawURL)
	if !ok {
		return false
	}
	query := ""
	if i := strings.IndexByte(href, '?'); i >= 0 {
		query = href[i+1:]
		if j := strings.IndexByte(query, '#'); j >= 0 {
			query = query[:j]
		}
	}
	want, _ := formValue(query, "bodySHA256")
	sum := sha256.Sum256(body)
	var got [2 * sha256.Size]byte
	hex.Encode(got[:], sum[:])
	sigOK := v.Validate(rawURL, nil, signature)
	return sigOK && subtle.ConstantTimeCompare([]byte(want), got[:]) == 1
}

// MaxSignedBodyBytes bounds the body ValidateRequest reads to check a
// bodySHA256 signature.
const MaxSignedBodyBytes = 1 << 20

// ValidateRequest validates an ordinary Twilio webhook (for example a stream
// status callback) received at publicURL, the URL as configured at Twilio
// (with its query, if any), as twilio-node's validateIncomingRequest does:
//   - when publicURL contains "bodySHA256" (a webhook with a JSON or other
//     non-form body), the signature covers the URL and the body must hash to
//     it (ValidateBody); the body, at most MaxSignedBodyBytes, is read and
//     put back in r.Body for the handler;
//   - otherwise, for POST requests the form body parameters are signed
//     (r.ParseForm is called) and for other methods only the URL.
//
// It returns an error wrapping ErrSignature on failure.
func (v *Validator) ValidateRequest(r *http.Request, publicURL string) error {
	sig := r.Header.Get(SignatureHeader)
	if sig == "" {
		return fmt.Errorf("%w: header missing", ErrSignature)
	}
	if strings.Index(publicURL, "bodySHA256") > 0 {
		var body []byte
		if r.Body != nil {
			b, err := io.ReadAll(io.LimitReader(r.Body, MaxSignedBodyBytes+1))
			r.Body.Close()
			if err != nil {
				return fmt.Errorf("%w: reading body: %v", ErrSignature, err)
			}
			if len(b) > MaxSignedBodyBytes {
				return fmt.Errorf("%w: body over %d bytes", ErrSignature, MaxSignedBodyBytes)
			}
			body = b
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		if !v.ValidateBody(publicURL, body, sig) {
			return ErrSignature
		}
		return nil
	}
	var params url.Values
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			return fmt.Errorf("%w: form: %v", ErrSignature, err)
		}
		params = r.PostForm
	}
	if !v.Validate(publicURL, params, sig) {
		return ErrSignature
	}
	return nil
}

// upgradeURL turns the public URL Twilio connects to into the form Twilio
// signs: https becomes wss and http becomes ws.
func upgradeURL(public string) string {
	switch {
	case strings.HasPrefix(public, "https://"):
		return "wss://" + public[len("https://"):]
	case strings.HasPrefix(public, "http://"):
		return "ws://" + public[len("http://"):]
	}
	return public
}
