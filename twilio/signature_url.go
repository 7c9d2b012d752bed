package twilio

import (
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file reproduces the URL handling of twilio-node's validateRequest
// (npm twilio 6.3.1, src/webhooks/webhooks.ts) byte for byte:
//
//   - splitURL, addPort and removePort edit the URL as text, without
//     normalising it, as twilio-node's splitUrl, addPort and removePort do;
//   - whatwgHref is new URL(u).href of the WHATWG URL Standard for the
//     special schemes http, https, ws and wss (lower-case scheme and host,
//     default port dropped, percent-encoding of the path, query, fragment and
//     user info, dot segments, IPv4 and IPv6 host serialisation);
//   - legacyQuery re-encodes a query as Node's querystring.stringify(
//     querystring.parse(q)) does.
//
// Known limit, failing closed: a host with non-ASCII characters (which
// new URL would convert with IDNA) and a scheme other than http, https, ws or
// wss make whatwgHref fail, so only the URL as given (with and without port)
// is tried for them.

// urlParts is a URL split as twilio-node's splitUrl splits it.
type urlParts struct {
	scheme   string // "https://", as written
	userInfo string // "user:pass@" or ""
	host     string
	port     string // ":8443", ":" or ""
	rest     string // path, query and fragment
}

// splitURL matches /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)/i.
func splitURL(u string) (urlParts, bool) {
	i := 0
	if i >= len(u) || !isASCIIAlpha(u[i]) {
		return urlParts{}, false
	}
	for i++; i < len(u) && (isASCIIAlpha(u[i]) || isASCIIDigit(u[i]) || u[i] == '+' || u[i] == '.' || u[i] == '-'); i++ {
	}
	if !strings.HasPrefix(u[i:], "://") {
		return urlParts{}, false
	}
	p := urlParts{scheme: u[:i+3]}
	rest := u[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority := rest[:end]
	p.rest = rest[end:]
	at := strings.LastIndexByte(authority, '@')
	p.userInfo = authority[:at+1]
	hostPort := authority[at+1:]
	portStart := strings.IndexByte(hostPort[strings.LastIndexByte(hostPort, ']')+1:], ':')
	if portStart >= 0 {
		portStart += strings.LastIndexByte(hostPort, ']') + 1
		p.host, p.port = hostPort[:portStart], hostPort[portStart:]
	} else {
		p.host = hostPort
	}
	return p, true
}

// addPort adds ":443" (scheme https, any case) or ":80" (every other
// scheme, wss included, as in twilio-node) to a URL without a port.
func addPort(u string) string {
	p, ok := splitURL(u)
	if !ok || p.port != "" {
		return u
	}
	port := ":80"
	if strings.EqualFold(p.scheme, "https://") {
		port = ":443"
	}
	return p.scheme + p.userInfo + p.host + port + p.rest
}

// removePort removes the port of a URL.
func removePort(u string) string {
	p, ok := splitURL(u)
	if !ok {
		return u
	}
	return p.scheme + p.userInfo + p.host + p.rest
}

// signedURLCandidates returns the URLs whose signature twilio-node's
// validateRequest accepts for the configured URL u, in its order: u without
// and with its port; then, when u parses as a WHATWG URL, its href without
// and with port, and both again with the query re-encoded by Node's legacy
// querystring module. Duplicates are dropped.
func signedURLCandidates(u string) []string {
	out := make([]string, 0, 6)
	add := func(s string) {
		for _, x := range out {
			if x == s {
				return
			}
		}
		out = append(out, s)
	}
	add(removePort(u))
	add(addPort(u))
	href, ok := whatwgHref(u)
	if !ok {
		return out
	}
	a, b := removePort(href), addPort(href)
	add(a)
	add(b)
	add(legacyQuery(a))
	add(legacyQuery(b))
	return out
}

// ---- WHATWG URL parsing (special schemes only).

func isASCIIAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isASCIIDigit(c byte) bool { return c >= '0' && c <= '9' }
func isASCIIHex(c byte) bool {
	return isASCIIDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'f')
}

// Percent-encode sets of the URL Standard (§1.3).
type encodeSet uint8

const (
	fragmentSet encodeSet = iota
	specialQuerySet
	pathSet
	userinfoSet
)

func inEncodeSet(r rune, set encodeSet) bool {
	if r < 0x20 || r > 0x7e {
		return true // C0 control percent-encode set
	}
	switch set {
	case fragmentSet:
		return strings.ContainsRune(" \"<>`", r)
	case specialQuerySet:
		return strings.ContainsRune(" \"#<>'", r)
	case pathSet:
		return strings.ContainsRune(" \"#<>?`{}", r)
	default: // userinfo
		return strings.ContainsRune(" \"#<>?`{}/:;=@[\\]^|", r)
	}
}

const upperHex = "0123456789ABCDEF"

func appendPercentEncoded(b []byte, s string, set encodeSet) []byte {
	for _, r := range s { // invalid UTF-8 reads as U+FFFD
		if !inEncodeSet(r, set) {
			b = append(b, byte(r))
			continue
		}
		var tmp [utf8.UTFMax]byte
		n := utf8.EncodeRune(tmp[:], r)
		for _, c := range tmp[:n] {
			b = append(b, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return b
}

var defaultPorts = map[string]string{"http": "80", "https": "443", "ws": "80", "wss": "443"}

// whatwgHref returns new URL(s).href for an absolute URL with a special
// scheme, or false where new URL throws (and for the unsupported cases
// listed at the top of this file).
func whatwgHref(s string) (string, bool) {
	s = strings.TrimFunc(s, func(r rune) bool { return r <= 0x20 })
	if strings.ContainsAny(s, "\t\n\r") {
		s = strings.Map(func(r rune) rune {
			if r == '\t' || r == '\n' || r == '\r' {
				return -1
			}
			return r
		}, s)
	}
	colon := strings.IndexByte(s, ':')
	if colon <= 0 || !isASCIIAlpha(s[0]) {
		return "", false
	}
	for i := 1; i < colon; i++ {
		if c := s[i]; !isASCIIAlpha(c) && !isASCIIDigit(c) && c != '+' && c != '-' && c != '.' {
			return "", false
		}
	}
	scheme := strings.ToLower(s[:colon])
	defPort, special := defaultPorts[scheme]
	if !special {
		return "", false
	}
	rest := strings.TrimLeft(s[colon+1:], "/\\")
	end := strings.IndexAny(rest, "/\\?#")
	if end < 0 {
		end = len(rest)
	}
	authority, rest := rest[:end], rest[end:]

	b := make([]byte, 0, len(s)+16)
	b = append(b, scheme...)
	b = append(b, "://"...)

	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		info := strings.ReplaceAll(authority[:at], "@", "%40")
		authority = authority[at+1:]
		if authority == "" {
			return "", false
		}
		user, pass, hasPass := strings.Cut(info, ":")
		b = appendPercentEncoded(b, user, userinfoSet)
		if hasPass && pass != "" {
			b = append(b, ':')
			b = appendPercentEncoded(b, pass, userinfoSet)
		}
		if user != "" || (hasPass && pass != "") {
			b = append(b, '@')
		}
	}

	hostStr, portStr := authority, ""
	inBrackets := false
	for i := 0; i < len(authority); i++ {
		switch authority[i] {
		case '[':
			inBrackets = true
		case ']':
			inBrackets = false
		case ':':
			if !inBrackets {
				hostStr, portStr = authority[:i], authority[i+1:]
				i = len(authority)
			}
		}
	}
	if hostStr == "" {
		return "", false
	}
	host, ok := parseHost(hostStr)
	if !ok {
		return "", false
	}
	b = append(b, host...)
	if portStr != "" {
		n := 0
		for i := 0; i < len(portStr); i++ {
			if !isASCIIDigit(portStr[i]) {
				return "", false
			}
			n = n*10 + int(portStr[i]-'0')
			if n > 65535 {
				return "", false
			}
		}
		if p := strconv.Itoa(n); p != defPort {
			b = append(b, ':')
			b = append(b, p...)
		}
	}

	pathEnd := strings.IndexAny(rest, "?#")
	if pathEnd < 0 {
		pathEnd = len(rest)
	}
	b = appendPath(b, rest[:pathEnd])
	rest = rest[pathEnd:]
	if strings.HasPrefix(rest, "?") {
		q := rest[1:]
		frag := strings.IndexByte(q, '#')
		if frag >= 0 {
			q, rest = q[:frag], q[frag:]
		} else {
			rest = ""
		}
		b = append(b, '?')
		b = appendPercentEncoded(b, q, specialQuerySet)
	}
	if strings.HasPrefix(rest, "#") {
		b = append(b, '#')
		b = appendPercentEncoded(b, rest[1:], fragmentSet)
	}
	return string(b), true
}

// appendPath appends the serialised path of a special URL whose path, as
// written, is p (empty or starting with '/' or '\').
func appendPath(b []byte, p string) []byte {
	if p != "" {
		p = p[1:]
	}
	var segs []string
	var buf []byte
	for i := 0; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' && p[i] != '\\' {
			// Encode one whole rune.
			_, n := utf8.DecodeRuneInString(p[i:])
			buf = appendPercentEncoded(buf, p[i:i+n], pathSet)
			i += n - 1
			continue
		}
		atEnd := i == len(p)
		switch seg := string(buf); {
		case isDoubleDot(seg):
			if len(segs) > 0 {
				segs = segs[:len(segs)-1]
			}
			if atEnd {
				segs = append(segs, "")
			}
		case isSingleDot(seg):
			if atEnd {
				segs = append(segs, "")
			}
		default:
			segs = append(segs, seg)
		}
		buf = buf[:0]
	}
	for _, s := range segs {
		b = append(b, '/')
		b = append(b, s...)
	}
	return b
}

func isSingleDot(s string) bool { return s == "." || strings.EqualFold(s, "%2e") }

func isDoubleDot(s string) bool {
	switch strings.ToLower(s) {
	case "..", ".%2e", "%2e.", "%2e%2e":
		return true
	}
	return false
}

// parseHost is the host parser for special URLs, without IDNA: a host that
// is not ASCII after percent-decoding fails.
func parseHost(h string) (string, bool) {
	if strings.HasPrefix(h, "[") {
		if !strings.HasSuffix(h, "]") || len(h) < 3 {
			return "", false
		}
		return parseIPv6(h[1 : len(h)-1])
	}
	d := percentDecode(h)
	for i := 0; i < len(d); i++ {
		c := d[i]
		if c >= 0x80 {
			return "", false // IDNA not supported: fail closed
		}
		if c <= 0x20 || c == 0x7f || strings.IndexByte("#%/:<>?@[\\]^|", c) >= 0 {
			return "", false // forbidden domain code point
		}
	}
	d = []byte(strings.ToLower(string(d)))
	if len(d) == 0 {
		return "", false
	}
	if endsInNumber(string(d)) {
		return parseIPv4(string(d))
	}
	return string(d), true
}

func percentDecode(s string) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isASCIIHex(s[i+1]) && isASCIIHex(s[i+2]) {
			out = append(out, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		out = append(out, s[i])
	}
	return out
}

func unhex(c byte) byte {
	switch {
	case isASCIIDigit(c):
		return c - '0'
	default:
		return c | 0x20 - 'a' + 10
	}
}

func endsInNumber(h string) bool {
	parts := strings.Split(h, ".")
	if parts[len(parts)-1] == "" {
		if len(parts) == 1 {
			return false
		}
		parts = parts[:len(parts)-1]
	}
	last := parts[len(parts)-1]
	if last != "" && strings.Trim(last, "0123456789") == "" {
		return true
	}
	_, ok := parseIPv4Number(last)
	return ok
}

// parseIPv4Number parses a decimal, 0x hex or 0-prefixed octal number;
// values above 2^32 saturate (and then fail the range checks).
func parseIPv4Number(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	base := uint64(10)
	switch {
	case len(s) >= 2 && (s[:2] == "0x" || s[:2] == "0X"):
		s, base = s[2:], 16
	case len(s) >= 2 && s[0] == '0':
		s, base = s[1:], 8
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		var d uint64
		switch {
		case isASCIIDigit(c):
			d = uint64(c - '0')
		case base == 16 && isASCIIHex(c):
			d = uint64(unhex(c))
		default:
			return 0, false
		}
		if d >= base {
			return 0, false
		}
		if n < 1<<40 {
			n = n*base + d
		}
	}
	return n, true
}

func parseIPv4(h string) (string, bool) {
	parts := strings.Split(h, ".")
	if parts[len(parts)-1] == "" && len(parts) > 1 {
		parts = parts[:len(parts)-1]
	}
	if len(parts) > 4 {
		return "", false
	}
	nums := make([]uint64, len(parts))
	for i, p := range parts {
		n, ok := parseIPv4Number(p)
		if !ok {
			return "", false
		}
		nums[i] = n
	}
	for _, n := range nums[:len(nums)-1] {
		if n > 255 {
			return "", false
		}
	}
	last := nums[len(nums)-1]
	if last >= 1<<(8*(5-len(nums))) {
		return "", false
	}
	v := last
	for i, n := range nums[:len(nums)-1] {
		v += n << (8 * (3 - i))
	}
	return strconv.Itoa(int(v>>24)) + "." + strconv.Itoa(int(v>>16&255)) + "." +
		strconv.Itoa(int(v>>8&255)) + "." + strconv.Itoa(int(v&255)), true
}

// parseIPv6 parses the inside of [ ] and serialises it as the URL Standard
// does: lower-case hex, the first longest run of two or more zero pieces
// compressed, no embedded IPv4.
func parseIPv6(s string) (string, bool) {
	if strings.ContainsAny(s, "%[]") {
		return "", false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() {
		return "", false
	}
	b := a.As16()
	var pieces [8]uint16
	for i := range pieces {
		pieces[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	best, bestLen := -1, 1
	for i := 0; i < 8; {
		if pieces[i] != 0 {
			i++
			continue
		}
		j := i
		for j < 8 && pieces[j] == 0 {
			j++
		}
		if j-i > bestLen {
			best, bestLen = i, j-i
		}
		i = j
	}
	var sb strings.Builder
	sb.WriteByte('[')
	for i := 0; i < 8; i++ {
		if i == best {
			if i == 0 {
				sb.WriteString("::")
			} else {
				sb.WriteByte(':')
			}
			i += bestLen - 1
			continue
		}
		sb.WriteString(strconv.FormatUint(uint64(pieces[i]), 16))
		if i < 7 {
			sb.WriteByte(':')
		}
	}
	sb.WriteByte(']')
	return sb.String(), true
}

// ---- Node's legacy querystring module.

// legacyQuery returns u with the text after its first '?' (fragment
// included, as twilio-node does) replaced by
// querystring.stringify(querystring.parse(text)).
func legacyQuery(u string) string {
	i := strings.IndexByte(u, '?')
	if i < 0 || i == len(u)-1 {
		return u
	}
	keys, vals := nodeQueryParse(u[i+1:])
	var b []byte
	b = append(b, u[:i+1]...)
	first := true
	for _, k := range nodeKeyOrder(keys) {
		for _, v := range vals[k] {
			if !first {
				b = append(b, '&')
			}
			first = false
			b = nodeQueryEscape(b, k)
			b = append(b, '=')
			b = nodeQueryEscape(b, v)
		}
	}
	return string(b)
}

// nodeQueryParse is querystring.parse(q) with the default separators and
// maxKeys 1000: pieces split at '&', name and value at the first '=', '+'
// read as a space, %XX decoded and the bytes read as UTF-8 (invalid
// sequences become U+FFFD), empty pieces skipped. keys is in insertion
// order.
func nodeQueryParse(q string) (keys []string, vals map[string][]string) {
	vals = map[string][]string{}
	pairs := 1000
	pieces := strings.Split(q, "&")
	for i, piece := range pieces {
		if piece == "" {
			if i == len(pieces)-1 {
				break
			}
			if pairs--; pairs == 0 {
				return keys, vals
			}
			continue
		}
		k, v, _ := strings.Cut(piece, "=")
		k, v = nodeUnescape(k), nodeUnescape(v)
		if _, ok := vals[k]; !ok {
			keys = append(keys, k)
		}
		vals[k] = append(vals[k], v)
		if pairs--; pairs == 0 {
			return keys, vals
		}
	}
	return keys, vals
}

func nodeUnescape(s string) string {
	s = strings.ReplaceAll(s, "+", " ")
	if !strings.Contains(s, "%") {
		return s
	}
	return decodeUTF8Lossy(percentDecode(s))
}

// decodeUTF8Lossy decodes b as the WHATWG UTF-8 decoder (and Node's
// Buffer.toString) does: each maximal invalid subpart becomes one U+FFFD.
func decodeUTF8Lossy(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r != utf8.RuneError || n > 1 {
			sb.Write(b[:n])
			b = b[n:]
			continue
		}
		sb.WriteRune(utf8.RuneError)
		b = b[maximalSubpart(b):]
	}
	return sb.String()
}

// maximalSubpart returns the length of the invalid sequence starting at
// b[0] that the WHATWG decoder replaces with a single U+FFFD.
func maximalSubpart(b []byte) int {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xbf)
	switch {
	case c >= 0xc2 && c <= 0xdf:
		need = 1
	case c >= 0xe0 && c <= 0xef:
		need = 2
		if c == 0xe0 {
			lo = 0xa0
		} else if c == 0xed {
			hi = 0x9f
		}
	case c >= 0xf0 && c <= 0xf4:
		need = 3
		if c == 0xf0 {
			lo = 0x90
		} else if c == 0xf4 {
			hi = 0x8f
		}
	default:
		return 1
	}
	n := 1
	for ; n <= need && n < len(b); n++ {
		if b[n] < lo || b[n] > hi {
			break
		}
		lo, hi = 0x80, 0xbf
	}
	return n
}

// nodeKeyOrder orders keys as a JavaScript object does: canonical array
// indices ("0".."4294967294") ascending first, then the others in insertion
// order.
func nodeKeyOrder(keys []string) []string {
	var idx []string
	var other []string
	for _, k := range keys {
		if isArrayIndex(k) {
			idx = append(idx, k)
		} else {
			other = append(other, k)
		}
	}
	if len(idx) == 0 {
		return keys
	}
	for i := 1; i < len(idx); i++ {
		for j := i; j > 0 && indexLess(idx[j], idx[j-1]); j-- {
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
	}
	return append(idx, other...)
}

func isArrayIndex(k string) bool {
	if k == "" || len(k) > 10 || (k[0] == '0' && len(k) > 1) {
		return false
	}
	n, err := strconv.ParseUint(k, 10, 64)
	return err == nil && n <= 4294967294
}

func indexLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// nodeQueryEscape appends querystring.escape(s): everything but
// A-Z a-z 0-9 - _ . ! ~ * ' ( ) percent-encoded as UTF-8.
func nodeQueryEscape(b []byte, s string) []byte {
	for _, r := range s {
		if r < 0x80 && (isASCIIAlpha(byte(r)) || isASCIIDigit(byte(r)) || strings.ContainsRune("-_.!~*'()", r)) {
			b = append(b, byte(r))
			continue
		}
		var tmp [utf8.UTFMax]byte
		n := utf8.EncodeRune(tmp[:], r)
		for _, c := range tmp[:n] {
			b = append(b, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return b
}

// formValue returns the first value named name in a query, parsed as the
// URL Standard's application/x-www-form-urlencoded parser does
// (URLSearchParams.get).
func formValue(query, name string) (string, bool) {
	for _, piece := range strings.Split(query, "&") {
		if piece == "" {
			continue
		}
		k, v, _ := strings.Cut(piece, "=")
		k = strings.ReplaceAll(k, "+", " ")
		if decodeUTF8Lossy(percentDecode(k)) == name {
			return decodeUTF8Lossy(percentDecode(strings.ReplaceAll(v, "+", " "))), true
		}
	}
	return "", false
}
