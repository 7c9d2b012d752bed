package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
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

func writeSortedParams(w io.Writer, params url.Values) {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		vs := append([]string(nil), params[k]...)
		sort.Strings(vs)
		for i, v := range vs {
			if i > 0 && v == vs[i-1] {
				continue
			}
			io.WriteString(w, k)
			io.WriteString(w, v)
		}
	}
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

// Validate reports whether signature is a valid signature of rawURL and
// params under one of the tokens.
//
// Because Twilio signs the URL exactly as configured, several variants are
// tried: the URL as given, without its port, with the scheme's default port
// (443 for https and wss, 80 for http and ws), and, when it has a query, the
// URL without the query and the query's values added to params. Comparison
// is constant-time.
func (v *Validator) Validate(rawURL string, params url.Values, signature string) bool {
	if v == nil || len(v.tokens) == 0 || signature == "" {
		return false
	}
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil || len(sig) != sha1.Size {
		return false
	}
	ok := 0
	for _, cand := range urlVariants(rawURL, params) {
		for _, tok := range v.tokens {
			mac := hmac.New(sha1.New, []byte(tok))
			io.WriteString(mac, cand.url)
			writeSortedParams(mac, cand.params)
			ok |= subtle.ConstantTimeCompare(mac.Sum(nil), sig)
		}
	}
	return ok == 1
}

// ValidateBody validates a request whose body is not form data (for example
// JSON): rawURL must carry a bodySHA256 query parameter equal to the hex
// SHA-256 of body, and the signature covers the URL alone.
func (v *Validator) ValidateBody(rawURL string, body []byte, signature string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	want := u.Query().Get("bodySHA256")
	if want == "" {
		return false
	}
	sum := sha256.Sum256(body)
	got := hex.EncodeToString(sum[:])
	sigOK := v.validateExact(rawURL, signature)
	return sigOK && subtle.ConstantTimeCompare([]byte(strings.ToLower(want)), []byte(got)) == 1
}

// validateExact validates rawURL with its port variants but without moving
// the query into the parameters.
func (v *Validator) validateExact(rawURL, signature string) bool {
	if v == nil || len(v.tokens) == 0 {
		return false
	}
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil || len(sig) != sha1.Size {
		return false
	}
	ok := 0
	for _, u := range portVariants(rawURL) {
		for _, tok := range v.tokens {
			mac := hmac.New(sha1.New, []byte(tok))
			io.WriteString(mac, u)
			ok |= subtle.ConstantTimeCompare(mac.Sum(nil), sig)
		}
	}
	return ok == 1
}

// ValidateRequest validates an ordinary Twilio webhook (for example a stream
// status callback) received at publicURL, the URL as configured at Twilio
// (with its query, if any). For POST requests the form body parameters are
// signed; for GET only the URL. It calls r.ParseForm. It returns an error
// wrapping ErrSignature on failure.
func (v *Validator) ValidateRequest(r *http.Request, publicURL string) error {
	sig := r.Header.Get(SignatureHeader)
	if sig == "" {
		return fmt.Errorf("%w: header missing", ErrSignature)
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

type candidate struct {
	url    string
	params url.Values
}

func urlVariants(rawURL string, params url.Values) []candidate {
	var out []candidate
	for _, u := range portVariants(rawURL) {
		out = append(out, candidate{u, params})
	}
	if i := strings.IndexByte(rawURL, '?'); i >= 0 {
		q, err := url.ParseQuery(rawURL[i+1:])
		if err == nil {
			merged := url.Values{}
			for k, vs := range params {
				merged[k] = append(merged[k], vs...)
			}
			for k, vs := range q {
				merged[k] = append(merged[k], vs...)
			}
			for _, u := range portVariants(rawURL[:i]) {
				out = append(out, candidate{u, merged})
			}
		}
	}
	return out
}

// portVariants returns rawURL, rawURL without its port and rawURL with its
// scheme's default port, without duplicates. The rest of the URL is kept
// byte for byte.
func portVariants(rawURL string) []string {
	out := []string{rawURL}
	i := strings.Index(rawURL, "://")
	if i <= 0 {
		return out
	}
	scheme := strings.ToLower(rawURL[:i])
	rest := rawURL[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	userinfo := ""
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		userinfo, authority = authority[:at+1], authority[at+1:]
	}
	host := authority
	if h, _, err := net.SplitHostPort(authority); err == nil {
		host = h
		if strings.Contains(h, ":") {
			host = "[" + h + "]"
		}
	}
	if host == "" {
		return out
	}
	def := "80"
	if scheme == "https" || scheme == "wss" {
		def = "443"
	}
	prefix := rawURL[:i+3] + userinfo
	for _, s := range []string{prefix + host + tail, prefix + host + ":" + def + tail} {
		if s != out[0] && (len(out) < 2 || s != out[1]) {
			out = append(out, s)
		}
	}
	return out
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
