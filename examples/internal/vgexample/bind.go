package vgexample

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// ErrBinding reports a stream binding that is malformed, forged or expired.
var ErrBinding = errors.New("invalid stream binding")

// Binder signs the values that tie a media stream to the session that
// asked for it. Twilio's upgrade signature proves only that Twilio opened
// the WebSocket, not which of your calls and operations it belongs to, and
// custom parameters can be set by anyone able to write TwiML on the
// account: so the server signs (call SID, caller id, operation) into a
// short-lived token sent as a parameter, and checks it against the start
// message. A Binder is safe for concurrent use.
type Binder struct {
	key []byte
	now func() time.Time
}

// NewBinder returns a Binder keyed with key, or with a random key when key
// is empty (bindings then do not survive a restart).
func NewBinder(key []byte) *Binder {
	if len(key) == 0 {
		key = make([]byte, 32)
		rand.Read(key)
	}
	return &Binder{key: append([]byte(nil), key...), now: time.Now}
}

// Sign returns a token for fields, valid for ttl.
func (b *Binder) Sign(ttl time.Duration, fields ...string) string {
	exp := strconv.FormatInt(b.now().Add(ttl).Unix(), 10)
	return exp + "." + base64.RawURLEncoding.EncodeToString(b.mac(exp, fields))
}

// Verify checks that tok was made by Sign for the same fields and has not
// expired.
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
