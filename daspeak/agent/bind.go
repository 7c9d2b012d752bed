package agent

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// Binder signs short-lived tokens bound to a list of values: HMAC-SHA256
// over an expiry (Unix seconds) and the length-prefixed values, sent as
// "<expiry>.<base64url MAC>".
//
// The server uses one for event-stream tokens (bound to operation id and
// call id: a token for one call never opens another's events), and the
// Twilio adapter for Media Stream bindings: Twilio's upgrade signature
// proves only that Twilio opened the WebSocket, not which of your calls
// and operations it belongs to, and custom parameters can be set by
// anyone able to write TwiML on the account, so the server signs (call
// SID, caller id, operation) into a parameter and checks it against the
// start message. A Binder is safe for concurrent use.
type Binder struct {
	key []byte
	now func() time.Time
}

// NewBinder returns a Binder keyed with key (32 bytes or more advised), or
// with a random 32-byte key when key is empty: tokens then do not survive a
// restart nor verify on another server.
func NewBinder(key []byte) *Binder {
	if len(key) == 0 {
		key = make([]byte, 32)
		rand.Read(key) // never fails (crypto/rand)
	}
	return &Binder{key: append([]byte(nil), key...), now: time.Now}
}

// Sign returns a token for fields, valid for ttl (whole seconds).
func (b *Binder) Sign(ttl time.Duration, fields ...string) string {
	exp := strconv.FormatInt(b.now().Add(ttl).Unix(), 10)
	return exp + "." + base64.RawURLEncoding.EncodeToString(b.mac(exp, fields))
}

// Verify checks that tok was made by Sign of a Binder with the same key,
// for the same fields in the same order, and has not expired. Any failure
// is ErrBinding, without detail.
func (b *Binder) Verify(tok string, fields ...string) error {
	exp, sig, ok := strings.Cut(tok, ".")
	if !ok {
		return ErrBinding
	}
	t, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return ErrBinding
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, b.mac(exp, fields)) {
		return ErrBinding
	}
	if b.now().Unix() > t {
		return ErrBinding
	}
	return nil
}

func (b *Binder) mac(exp string, fields []string) []byte {
	m := hmac.New(sha256.New, b.key)
	m.Write([]byte(exp))
	for _, f := range fields {
		// Length-prefix each field so ("ab","c") and ("a","bc") differ.
		m.Write([]byte{0})
		m.Write([]byte(strconv.Itoa(len(f))))
		m.Write([]byte{':'})
		m.Write([]byte(f))
	}
	return m.Sum(nil)
}
