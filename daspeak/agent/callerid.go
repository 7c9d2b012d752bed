package agent

import (
	"fmt"
	"strings"
)

// NormalizeCallerID returns the E.164 form ("+" and 2 to 15 digits, the
// first not 0; ITU-T E.164 §6) of a caller id as telephony peers and
// HTTP clients spell it, so that one caller has one key in the credential
// store whatever the path the id came by:
//
//   - Twilio From and Genesys ani values: "+34911234567", "tel:+34911234567",
//     "sip:+34911234567@pbx.example.com" (the user part is taken);
//   - visual separators (spaces, '-', '.', '(', ')') are dropped;
//   - a leading space stands for '+': an unencoded "+" in a URL query
//     decodes to a space (application/x-www-form-urlencoded);
//   - the international prefix "00" becomes "+".
//
// Anything else ("anonymous", "client:alice", a national number without a
// country code) is refused with an error wrapping [ErrCallerID]: an id the
// server cannot tie to one telephone number must not key a voiceprint.
func NormalizeCallerID(id string) (string, error) {
	s := id
	if len(s) > 0 && s[0] == ' ' {
		s = "+" + strings.TrimLeft(s, " ")
	}
	s = strings.TrimSpace(s)
	lower := strings.ToLower(s)
	switch {
	case strings.HasPrefix(lower, "tel:"):
		s = s[len("tel:"):]
	case strings.HasPrefix(lower, "sips:"):
		s = s[len("sips:"):]
	case strings.HasPrefix(lower, "sip:"):
		s = s[len("sip:"):]
	}
	if i := strings.IndexAny(s, "@;"); i >= 0 {
		s = s[:i]
	}
	var b strings.Builder
	b.Grow(16)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			b.WriteByte(c)
		case c == '+' && b.Len() == 0:
			b.WriteByte(c)
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return "", fmt.Errorf("%w: %q has %q at byte %d", ErrCallerID, id, c, i)
		}
	}
	n := b.String()
	if strings.HasPrefix(n, "00") {
		n = "+" + n[2:]
	}
	if len(n) < 3 || n[0] != '+' || len(n) > 16 || n[1] == '0' {
		return "", fmt.Errorf("%w: %q (want + and 2 to 15 digits, e.g. +34911234567)", ErrCallerID, id)
	}
	return n, nil
}
