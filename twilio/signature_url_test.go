package twilio

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
)

// nodeURLScript reads a JSON array of URLs on stdin and prints, for each,
// new URL(u).href (null when it throws) and that href with its query
// re-encoded by Node's querystring module, the two normalisations
// twilio-node's validateRequest applies. Only Node built-ins are used.
const nodeURLScript = `
const qs = require("querystring");
let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  const out = JSON.parse(input).map((u) => {
    let href = null;
    try { href = new URL(u).href; } catch (e) { return { href: null, legacy: null }; }
    const q = href.indexOf("?");
    if (q === -1 || q === href.length - 1) return { href, legacy: href };
    return { href, legacy: href.slice(0, q) + "?" + qs.stringify(qs.parse(href.slice(q + 1))) };
  });
  process.stdout.write(JSON.stringify(out));
});
`

// randomURLs returns n URLs built from pieces that exercise the WHATWG
// parser: schemes, hosts (IPv4 forms, IPv6, percent-encoded, invalid),
// ports and path/query/fragment characters. Hosts are ASCII: IDNA is out of
// scope (whatwgHref fails closed on it).
func randomURLs(n int, seed uint64) []string {
	r := rand.New(rand.NewPCG(seed, 1))
	pieces := []string{"a", "B", "/", "\\", "?", "#", "%", "%2e", "%2E", ".", "..", "%41", "%zz", "%e9", "%C3%A9", "é", "😀", " ", "\t", "'",
		"\"", "<", ">", "`", "{", "}", "^", "|", "[", "]", "@", ":", ";", "=", "&", "+", "~", "!", "*", "(", ")", "$", ",", "0", "1",
		"9", "x", "-", "_", "\x00", "\x1f", "\x7f", "%00", "%ff", "%F0%9F%98", "é%", "\ufffd", "&&", "a=b", "=", "10=", "2="}
	hosts := []string{"example.com", "EXAMPLE.COM", "Ex-ample.com.", "127.0.0.1", "0x7f.1", "0177.0.0.1", "1.2.3", "4294967295",
		"4294967296", "[::1]", "[::FFFF:1.2.3.4]", "[1:0:0:2:0:0:0:3]", "[0:0::0]", "a.b.c.", "%41bc.com", "a%2eb", "exa mple.com",
		"a..b", "1.2.3.4.5", "09.1", "0x", "0xg.com", "1.2.3.0x10", "xn--caf-dma.com", "_srv.example.com", "a*b.com", "x",
		"[::1%25eth0]", "a:b@h", "@h", ":@h", "u@p@h", "[1::2::3]", "[::1.2.3.04]", "%7e.com", "a%zzb"}
	schemes := []string{"https://", "http://", "wss://", "ws://", "HTTPS://", "Https:", "https:/", "https:///", "wss:\\\\", "ws:", " https://"}
	ports := []string{"", ":", ":443", ":80", ":0443", ":8443", ":65535", ":65536", ":x", ":080"}
	out := make([]string, n)
	for i := range out {
		var b strings.Builder
		b.WriteString(schemes[r.IntN(len(schemes))])
		b.WriteString(hosts[r.IntN(len(hosts))])
		b.WriteString(ports[r.IntN(len(ports))])
		if r.IntN(3) > 0 {
			b.WriteByte('/')
		}
		for range r.IntN(12) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		out[i] = b.String()
	}
	return out
}

// TestWHATWGHrefMatchesNode compares whatwgHref and legacyQuery with Node's
// own new URL() and querystring on random URLs. It needs node on PATH.
func TestWHATWGHrefMatchesNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not on PATH: the differential check against Node's URL parser needs Node.js")
	}
	urls := randomURLs(10000, 2026)
	in, _ := json.Marshal(urls)
	cmd := exec.Command(node, "-e", nodeURLScript)
	cmd.Stdin = bytes.NewReader(in)
	outJSON, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var want []struct {
		Href   *string
		Legacy *string
	}
	if err := json.Unmarshal(outJSON, &want); err != nil || len(want) != len(urls) {
		t.Fatalf("node output: %v, %d answers", err, len(want))
	}
	parsed, bad, idna := 0, 0, 0
	for i, u := range urls {
		href, ok := whatwgHref(u)
		w := want[i]
		if !ok && w.Href != nil && strings.Contains(*w.Href, "xn--") && !strings.Contains(u, "xn--") {
			idna++ // non-ASCII host: IDNA is not implemented, fails closed
			continue
		}
		switch {
		case w.Href == nil && ok:
			t.Errorf("%q: node throws, whatwgHref = %q", u, href)
		case w.Href != nil && (!ok || href != *w.Href):
			t.Errorf("%q: node %q, whatwgHref %q (ok %v)", u, *w.Href, href, ok)
		case w.Href != nil && legacyQuery(href) != *w.Legacy:
			t.Errorf("legacyQuery(%q): node %q, got %q", href, *w.Legacy, legacyQuery(href))
		default:
			if ok {
				parsed++
			}
			continue
		}
		if bad++; bad > 20 {
			t.Fatal("too many differences")
		}
	}
	t.Logf("%d URLs: %d parsed alike, %d refused alike, %d with IDNA hosts skipped", len(urls), parsed, len(urls)-parsed-idna, idna)
	if parsed < len(urls)/4 {
		t.Errorf("only %d of %d URLs parse: the generator no longer exercises the parser", parsed, len(urls))
	}
}

func TestWHATWGHref(t *testing.T) {
	for in, want := range map[string]string{
		"HTTPS://Example.COM:443/a/./b/../c?x='y' z#f g": "https://example.com/a/c?x=%27y%27%20z#f%20g",
		"wss://example.com:0443":                         "wss://example.com/",
		"https://[0:0:0:0:0:ffff:102:304]:8443/":         "https://[::ffff:102:304]:8443/",
		"http://0x7f.1/":                                 "http://127.0.0.1/",
		"https://u s:p@w@h/":                             "https://u%20s:p%40w@h/",
		"https:\\\\h\\a\\%2e%2E\\b":                      "https://h/b",
	} {
		if got, ok := whatwgHref(in); !ok || got != want {
			t.Errorf("whatwgHref(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "example.com/x", "ftp://h/", "mailto:a@b", "https://", "https://h:99999/", "https://a b/",
		"https://[::1/", "https://256.0.0.1/", "https://caf\u00e9.example/", "https://@/"} {
		if got, ok := whatwgHref(in); ok {
			t.Errorf("whatwgHref(%q) = %q, want failure", in, got)
		}
	}
}

func TestLegacyQuery(t *testing.T) {
	for in, want := range map[string]string{
		"https://h/p":                      "https://h/p",
		"https://h/p?":                     "https://h/p?",
		"https://h/p?a=1&&b&=c&d=":         "https://h/p?a=1&b=&=c&d=",
		"https://h/p?b=2&a=1&b=3":          "https://h/p?b=2&b=3&a=1",
		"https://h/p?b=1&10=x&2=y&01=z":    "https://h/p?2=y&10=x&b=1&01=z",
		"https://h/p?q=a+b%2B[]|~%7e":      "https://h/p?q=a%20b%2B%5B%5D%7C~~",
		"https://h/p?a=%E9%C3%A9%F0%9F%98": "https://h/p?a=%EF%BF%BD%C3%A9%EF%BF%BD",
		"https://h/p?a=1#x":                "https://h/p?a=1%23x",
	} {
		if got := legacyQuery(in); got != want {
			t.Errorf("legacyQuery(%q) = %q, want %q", in, got, want)
		}
	}
}
