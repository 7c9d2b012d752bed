package audiohook

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// This file holds the subset of RFC 8941 structured fields that HTTP message
// signatures use: dictionaries whose members are inner lists of strings or
// byte sequences, with parameters.

// sfToken is a structured-field token parameter value (unquoted).
type sfToken string

// signatureParam is one parameter of a signature: Value is a string
// (sf-string), an int64 (sf-integer), a sfToken, a bool or a []byte.
type signatureParam struct {
	Name  string
	Value any
}

type sfItem struct {
	value  any
	params []signatureParam
}

type sfMember struct {
	key    string
	inner  []sfItem // set when isList
	isList bool
	item   sfItem
	params []signatureParam
}

var errSF = errors.New("structured field")

type sfParser struct {
	s string
	i int
}

func (p *sfParser) fail(what string) error {
	return fmt.Errorf("%w: %s at offset %d", errSF, what, p.i)
}

func (p *sfParser) skipSP() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *sfParser) skipOWS() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func isLCAlpha(c byte) bool { return c >= 'a' && c <= 'z' }
func isDigit(c byte) bool   { return c >= '0' && c <= '9' }

func (p *sfParser) key() (string, error) {
	start := p.i
	if p.i >= len(p.s) || !(isLCAlpha(p.s[p.i]) || p.s[p.i] == '*') {
		return "", p.fail("expected key")
	}
	p.i++
	for p.i < len(p.s) {
		c := p.s[p.i]
		if isLCAlpha(c) || isDigit(c) || c == '_' || c == '-' || c == '.' || c == '*' {
			p.i++
			continue
		}
		break
	}
	return p.s[start:p.i], nil
}

func (p *sfParser) params() ([]signatureParam, error) {
	var ps []signatureParam
	for p.i < len(p.s) && p.s[p.i] == ';' {
		p.i++
		p.skipSP()
		k, err := p.key()
		if err != nil {
			return nil, err
		}
		var v any = true
		if p.i < len(p.s) && p.s[p.i] == '=' {
			p.i++
			if v, err = p.bareItem(); err != nil {
				return nil, err
			}
		}
		replaced := false
		for j := range ps {
			if ps[j].Name == k {
				ps[j].Value, replaced = v, true
			}
		}
		if !replaced {
			ps = append(ps, signatureParam{Name: k, Value: v})
		}
	}
	return ps, nil
}

func (p *sfParser) bareItem() (any, error) {
	if p.i >= len(p.s) {
		return nil, p.fail("expected item")
	}
	c := p.s[p.i]
	switch {
	case c == '"':
		return p.str()
	case c == ':':
		return p.bytes()
	case c == '?':
		if p.i+1 < len(p.s) && (p.s[p.i+1] == '0' || p.s[p.i+1] == '1') {
			p.i += 2
			return p.s[p.i-1] == '1', nil
		}
		return nil, p.fail("bad boolean")
	case c == '-' || isDigit(c):
		return p.integer()
	case c == '*' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
		start := p.i
		p.i++
		for p.i < len(p.s) {
			c := p.s[p.i]
			if c > 0x20 && c < 0x7f && !strings.ContainsRune("\"(),;<=>?@[\\]{}", rune(c)) || c == ':' || c == '/' {
				p.i++
				continue
			}
			break
		}
		return sfToken(p.s[start:p.i]), nil
	}
	return nil, p.fail("unexpected character")
}

func (p *sfParser) str() (string, error) {
	p.i++ // opening quote
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '\\':
			if p.i >= len(p.s) || (p.s[p.i] != '"' && p.s[p.i] != '\\') {
				return "", p.fail("bad escape")
			}
			b.WriteByte(p.s[p.i])
			p.i++
		case c == '"':
			return b.String(), nil
		case c < 0x20 || c > 0x7e:
			return "", p.fail("bad string character")
		default:
			b.WriteByte(c)
		}
	}
	return "", p.fail("unterminated string")
}

func (p *sfParser) bytes() ([]byte, error) {
	p.i++
	end := strings.IndexByte(p.s[p.i:], ':')
	if end < 0 {
		return nil, p.fail("unterminated byte sequence")
	}
	enc := p.s[p.i : p.i+end]
	p.i += end + 1
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(enc, "=")); err != nil {
			return nil, p.fail("bad base64")
		}
	}
	return b, nil
}

func (p *sfParser) integer() (int64, error) {
	start := p.i
	if p.s[p.i] == '-' {
		p.i++
	}
	for p.i < len(p.s) && isDigit(p.s[p.i]) {
		p.i++
	}
	if p.i < len(p.s) && p.s[p.i] == '.' {
		return 0, p.fail("decimals are not supported")
	}
	digits := p.i - start
	if p.s[start] == '-' {
		digits--
	}
	if digits < 1 || digits > 15 {
		return 0, p.fail("bad integer")
	}
	return strconv.ParseInt(p.s[start:p.i], 10, 64)
}

func (p *sfParser) item() (sfItem, error) {
	v, err := p.bareItem()
	if err != nil {
		return sfItem{}, err
	}
	ps, err := p.params()
	return sfItem{value: v, params: ps}, err
}

// parseDictionary parses an RFC 8941 dictionary (without decimals).
func parseDictionary(s string) ([]sfMember, error) {
	p := &sfParser{s: s}
	p.skipSP()
	var ms []sfMember
	for p.i < len(p.s) {
		k, err := p.key()
		if err != nil {
			return nil, err
		}
		m := sfMember{key: k}
		if p.i < len(p.s) && p.s[p.i] == '=' {
			p.i++
			if p.i < len(p.s) && p.s[p.i] == '(' {
				p.i++
				m.isList = true
				for {
					p.skipSP()
					if p.i >= len(p.s) {
						return nil, p.fail("unterminated inner list")
					}
					if p.s[p.i] == ')' {
						p.i++
						break
					}
					it, err := p.item()
					if err != nil {
						return nil, err
					}
					m.inner = append(m.inner, it)
					if p.i < len(p.s) && p.s[p.i] != ' ' && p.s[p.i] != ')' {
						return nil, p.fail("bad inner list")
					}
				}
				if m.params, err = p.params(); err != nil {
					return nil, err
				}
			} else {
				if m.item, err = p.item(); err != nil {
					return nil, err
				}
			}
		} else {
			m.item.value = true
			if m.item.params, err = p.params(); err != nil {
				return nil, err
			}
		}
		replaced := false
		for j := range ms {
			if ms[j].key == k {
				ms[j], replaced = m, true
			}
		}
		if !replaced {
			ms = append(ms, m)
		}
		p.skipOWS()
		if p.i >= len(p.s) {
			break
		}
		if p.s[p.i] != ',' {
			return nil, p.fail("expected comma")
		}
		p.i++
		p.skipOWS()
		if p.i >= len(p.s) {
			return nil, p.fail("trailing comma")
		}
	}
	return ms, nil
}

func appendSFString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '"')
}

func appendSFParams(dst []byte, ps []signatureParam) []byte {
	for _, p := range ps {
		dst = append(dst, ';')
		dst = append(dst, p.Name...)
		switch v := p.Value.(type) {
		case bool:
			if !v {
				dst = append(dst, "=?0"...)
			}
		case string:
			dst = append(dst, '=')
			dst = appendSFString(dst, v)
		case sfToken:
			dst = append(dst, '=')
			dst = append(dst, v...)
		case int64:
			dst = append(dst, '=')
			dst = strconv.AppendInt(dst, v, 10)
		case int:
			dst = append(dst, '=')
			dst = strconv.AppendInt(dst, int64(v), 10)
		case []byte:
			dst = append(dst, '=', ':')
			dst = base64.StdEncoding.AppendEncode(dst, v)
			dst = append(dst, ':')
		}
	}
	return dst
}
