package audiohook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/voicegate/voicegate/audiohook/wire"
)

// signatureComponents are the components a Genesys client signs, in order.
var signatureComponents = []string{
	"@request-target", "@authority",
	"audiohook-organization-id", "audiohook-session-id", "audiohook-correlation-id",
	"x-api-key",
}

// signatureAlgorithm is the only algorithm AudioHook uses.
const signatureAlgorithm = "hmac-sha256"

// signatureInput is one member of a Signature-Input header: a label, the
// covered components and the signature parameters in their order.
type signatureInput struct {
	Label      string
	Components []string
	Params     []signatureParam
}

// Param returns the value of the named parameter, or nil.
func (in *signatureInput) Param(name string) any {
	for _, p := range in.Params {
		if p.Name == name {
			return p.Value
		}
	}
	return nil
}

// String returns the @signature-params value: the inner list of components
// and the parameters, re-encoded from the parsed structure.
func (in *signatureInput) String() string {
	b := []byte{'('}
	for i, c := range in.Components {
		if i > 0 {
			b = append(b, ' ')
		}
		b = appendSFString(b, c)
	}
	b = append(b, ')')
	return string(appendSFParams(b, in.Params))
}

// parseSignatureInput parses a Signature-Input header value into its members.
func parseSignatureInput(v string) ([]signatureInput, error) {
	ms, err := parseDictionary(v)
	if err != nil {
		return nil, fmt.Errorf("%w: Signature-Input: %w", ErrSignature, err)
	}
	out := make([]signatureInput, 0, len(ms))
	for _, m := range ms {
		if !m.isList {
			return nil, fmt.Errorf("%w: Signature-Input member %q is not an inner list", ErrSignature, m.key)
		}
		in := signatureInput{Label: m.key, Params: m.params}
		for _, it := range m.inner {
			s, ok := it.value.(string)
			if !ok || len(it.params) > 0 {
				return nil, fmt.Errorf("%w: Signature-Input %q: component is not a plain string", ErrSignature, m.key)
			}
			in.Components = append(in.Components, s)
		}
		out = append(out, in)
	}
	return out, nil
}

// parseSignature parses a Signature header value into label → signature.
func parseSignature(v string) (map[string][]byte, error) {
	ms, err := parseDictionary(v)
	if err != nil {
		return nil, fmt.Errorf("%w: Signature: %w", ErrSignature, err)
	}
	out := make(map[string][]byte, len(ms))
	for _, m := range ms {
		b, ok := m.item.value.([]byte)
		if m.isList || !ok {
			return nil, fmt.Errorf("%w: Signature member %q is not a byte sequence", ErrSignature, m.key)
		}
		out[m.key] = b
	}
	return out, nil
}

// componentValue returns the value of one covered component of r.
func componentValue(r *http.Request, name string) (string, error) {
	switch name {
	case "@request-target":
		if r.RequestURI != "" {
			return r.RequestURI, nil
		}
		return requestTarget(r.URL), nil
	case "@authority":
		h := r.Host
		if h == "" && r.URL != nil {
			h = r.URL.Host
		}
		return strings.ToLower(h), nil
	case "@method":
		return r.Method, nil
	case "@path":
		p := r.URL.EscapedPath()
		if p == "" {
			p = "/"
		}
		return p, nil
	case "@query":
		return "?" + r.URL.RawQuery, nil
	}
	if strings.HasPrefix(name, "@") || name != strings.ToLower(name) {
		return "", fmt.Errorf("%w: unsupported component %q", ErrSignature, name)
	}
	var vals []string
	if name == "host" {
		if r.Host != "" {
			vals = []string{r.Host}
		} else {
			vals = r.Header.Values("Host")
		}
	} else {
		vals = r.Header.Values(name)
	}
	if len(vals) == 0 {
		return "", fmt.Errorf("%w: component %q missing from request", ErrSignature, name)
	}
	for i, v := range vals {
		vals[i] = foldSpace(strings.TrimSpace(v))
	}
	return strings.Join(vals, ", "), nil
}

// foldSpace replaces obsolete line folding (CRLF followed by white space)
// with a single space.
func foldSpace(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] == '\r' || s[i] == '\n' {
			t := strings.TrimRight(b.String(), " \t")
			b.Reset()
			b.WriteString(t)
			for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n') {
				i++
			}
			b.WriteByte(' ')
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

func requestTarget(u *url.URL) string {
	if u == nil {
		return "/"
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	if u.RawQuery != "" || u.ForceQuery {
		p += "?" + u.RawQuery
	}
	return p
}

// signatureBase returns the signature base of r for in: one line per
// component, then the @signature-params line, joined by "\n".
func signatureBase(r *http.Request, in *signatureInput) ([]byte, error) {
	var b []byte
	for _, c := range in.Components {
		v, err := componentValue(r, c)
		if err != nil {
			return nil, err
		}
		if strings.ContainsAny(v, "\r\n") {
			return nil, fmt.Errorf("%w: component %q holds a line break", ErrSignature, c)
		}
		b = appendSFString(b, c)
		b = append(b, ':', ' ')
		b = append(b, v...)
		b = append(b, '\n')
	}
	b = append(b, `"@signature-params": `...)
	b = append(b, in.String()...)
	return b, nil
}

// hmacSHA256 returns the hmac-sha256 signature of base under key.
func hmacSHA256(key, base []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(base)
	return m.Sum(nil)
}

// newNonce returns a nonce as the Genesys client makes it: base64 of 18
// random bytes (24 characters).
func newNonce() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// SignRequest signs r as a Genesys AudioHook client does, setting the
// Signature and Signature-Input headers (label sig1) over @request-target,
// @authority, the Audiohook-* headers and x-api-key, with keyid = r's
// X-API-KEY, the nonce (random when empty), alg hmac-sha256, created = now,
// expires = now + 30 s. secret is the base64-decoded client secret; r must
// carry its Host and the Audiohook-* and X-API-KEY headers.
func SignRequest(r *http.Request, secret []byte, now time.Time, nonce string) error {
	if nonce == "" {
		nonce = newNonce()
	}
	created := now.Unix()
	in := &signatureInput{
		Label:      "sig1",
		Components: signatureComponents,
		Params: []signatureParam{
			{Name: "keyid", Value: r.Header.Get(wire.HeaderAPIKey)},
			{Name: "nonce", Value: nonce},
			{Name: "alg", Value: signatureAlgorithm},
			{Name: "created", Value: created},
			{Name: "expires", Value: created + 30},
		},
	}
	return signRequestWith(r, secret, in)
}

// signRequestWith signs r with the components and parameters of in and sets
// the Signature and Signature-Input headers.
func signRequestWith(r *http.Request, secret []byte, in *signatureInput) error {
	base, err := signatureBase(r, in)
	if err != nil {
		return err
	}
	sig := hmacSHA256(secret, base)
	r.Header.Set(wire.HeaderSignatureInput, in.Label+"="+in.String())
	r.Header.Set(wire.HeaderSignature, in.Label+"=:"+base64.StdEncoding.EncodeToString(sig)+":")
	return nil
}

// verifyOptions is the verification policy of verifyRequest. The zero value
// is the reference server's policy.
type verifyOptions struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ClockSkew tolerated between client and server; 0 means 3 s.
	ClockSkew time.Duration
	// MaxAge of a signature measured from created; 0 means 10 s. A signature
	// fails when created + MaxAge < now + ClockSkew.
	MaxAge time.Duration
	// Nonces, when set, rejects nonces seen before with ErrReplay. A nonce
	// is kept until min(expires, created + MaxAge + ClockSkew); a replay
	// after that fails the clock checks by itself.
	Nonces NonceCache
}

var requiredParams = map[string]bool{"keyid": true, "nonce": true, "created": true, "expires": true}

// verifyRequest checks the HTTP message signature of an AudioHook upgrade
// request against secret (base64-decoded) with the reference policy:
//
//   - keyid must equal the X-API-KEY header;
//   - all of signatureComponents must be covered;
//   - only the parameters keyid, nonce, alg, created and expires are allowed,
//     all but alg are required, alg must be hmac-sha256 and the nonce at
//     least 22 characters long;
//   - created ≤ now + skew, expires ≥ now + skew and created + MaxAge ≥
//     now + skew;
//   - the signature is compared in constant time, and only then the nonce is
//     recorded in the replay cache (see NonceCache).
//
// Errors wrap ErrSignature, or the cache's ErrReplay or ErrNonceCacheFull.
func verifyRequest(r *http.Request, secret []byte, opts *verifyOptions) (*signatureInput, error) {
	var o verifyOptions
	if opts != nil {
		o = *opts
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ClockSkew == 0 {
		o.ClockSkew = 3 * time.Second
	}
	if o.MaxAge == 0 {
		o.MaxAge = 10 * time.Second
	}
	si := r.Header.Values(wire.HeaderSignatureInput)
	sg := r.Header.Values(wire.HeaderSignature)
	if len(si) == 0 || len(sg) == 0 {
		return nil, fmt.Errorf("%w: request is not signed", ErrSignature)
	}
	ins, err := parseSignatureInput(strings.Join(si, ", "))
	if err != nil {
		return nil, err
	}
	sigs, err := parseSignature(strings.Join(sg, ", "))
	if err != nil {
		return nil, err
	}
	if len(ins) == 0 {
		return nil, fmt.Errorf("%w: empty Signature-Input", ErrSignature)
	}
	in := &ins[0]
	got, ok := sigs[in.Label]
	if !ok {
		return nil, fmt.Errorf("%w: no Signature for label %q", ErrSignature, in.Label)
	}
	for _, p := range in.Params {
		switch p.Name {
		case "keyid", "nonce", "alg":
			if _, ok := p.Value.(string); !ok {
				return nil, fmt.Errorf("%w: parameter %s is not a string", ErrSignature, p.Name)
			}
		case "created", "expires":
			if _, ok := p.Value.(int64); !ok {
				return nil, fmt.Errorf("%w: parameter %s is not an integer", ErrSignature, p.Name)
			}
		default:
			return nil, fmt.Errorf("%w: unknown parameter %q", ErrSignature, p.Name)
		}
	}
	for name := range requiredParams {
		if in.Param(name) == nil {
			return nil, fmt.Errorf("%w: missing parameter %s", ErrSignature, name)
		}
	}
	if alg, ok := in.Param("alg").(string); ok && alg != signatureAlgorithm {
		return nil, fmt.Errorf("%w: algorithm %q", ErrSignature, alg)
	}
	if in.Param("keyid").(string) != r.Header.Get(wire.HeaderAPIKey) {
		return nil, fmt.Errorf("%w: keyid does not match %s", ErrSignature, wire.HeaderAPIKey)
	}
	nonce := in.Param("nonce").(string)
	if len(nonce) < 22 {
		return nil, fmt.Errorf("%w: nonce of %d characters < 22", ErrSignature, len(nonce))
	}
	covered := make(map[string]bool, len(in.Components))
	for _, c := range in.Components {
		if covered[c] {
			return nil, fmt.Errorf("%w: component %q twice", ErrSignature, c)
		}
		covered[c] = true
	}
	for _, c := range signatureComponents {
		if !covered[c] {
			return nil, fmt.Errorf("%w: component %q not covered", ErrSignature, c)
		}
	}
	now := o.Now()
	created := time.Unix(in.Param("created").(int64), 0)
	expires := time.Unix(in.Param("expires").(int64), 0)
	limit := now.Add(o.ClockSkew)
	switch {
	case created.After(limit):
		return nil, fmt.Errorf("%w: created %d is in the future", ErrSignature, created.Unix())
	case expires.Before(limit):
		return nil, fmt.Errorf("%w: signature expired at %d", ErrSignature, expires.Unix())
	case created.Add(o.MaxAge).Before(limit):
		return nil, fmt.Errorf("%w: signature created at %d is too old", ErrSignature, created.Unix())
	}
	base, err := signatureBase(r, in)
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(hmacSHA256(secret, base), got) {
		return nil, fmt.Errorf("%w: signature does not match", ErrSignature)
	}
	if o.Nonces != nil {
		// The last instant a replay passes the checks above is
		// min(expires, created+MaxAge) - ClockSkew; keeping the nonce
		// 2*ClockSkew longer also covers a cache shared by servers whose
		// clocks differ by up to ClockSkew.
		until := created.Add(o.MaxAge + o.ClockSkew)
		if expires.Before(until) {
			until = expires
		}
		if err := o.Nonces.Add(nonce, now, until); err != nil {
			return nil, fmt.Errorf("%w (nonce %q)", err, nonce)
		}
	}
	return in, nil
}
