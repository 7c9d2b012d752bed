package offline

import (
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"math"
	"strings"
)

// credentialPrefix starts every credential of format version 1.
const credentialPrefix = "vgo1."

// encodeCredential serialises an embedding with its model hash:
// "vgo1." + base64url(no padding) of
// [version 1][hash length][hash][dimension uint16 LE][float32 LE…][CRC-32 IEEE of all before].
func encodeCredential(hash string, emb []float32) string {
	return new(workspace).encodeCredential(hash, emb)
}

// encodeCredential is encodeCredential with ws's buffers; only the
// returned string is new.
func (ws *workspace) encodeCredential(hash string, emb []float32) string {
	b := ws.raw[:0]
	b = append(b, 1, byte(len(hash)))
	b = append(b, hash...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(emb)))
	for _, x := range emb {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	b = binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
	t := append(ws.text[:0], credentialPrefix...)
	t = base64.RawURLEncoding.AppendEncode(t, b)
	ws.raw, ws.text = b, t
	return string(t)
}

// decodeCredential parses a credential. ok is false for anything malformed:
// wrong prefix or version, bad base64, a size mismatch, a checksum mismatch
// or a non-finite value.
func decodeCredential(s string) (hash string, emb []float32, ok bool) {
	return new(workspace).decodeCredential(s)
}

// decodeCredential is decodeCredential with ws's buffers: emb is ws's
// until its next decodeCredential.
func (ws *workspace) decodeCredential(s string) (hash string, emb []float32, ok bool) {
	rest, found := strings.CutPrefix(s, credentialPrefix)
	if !found || len(rest) > 16384 {
		return "", nil, false
	}
	ws.text = append(ws.text[:0], rest...)
	b, err := base64.RawURLEncoding.AppendDecode(ws.raw[:0], ws.text)
	if b != nil {
		ws.raw = b
	}
	if err != nil || len(b) < 8 || b[0] != 1 {
		return "", nil, false
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return "", nil, false
	}
	hl := int(body[1])
	if len(body) < 2+hl+2 {
		return "", nil, false
	}
	hash = string(body[2 : 2+hl])
	p := body[2+hl:]
	dim := int(binary.LittleEndian.Uint16(p))
	p = p[2:]
	if dim == 0 || len(p) != 4*dim {
		return "", nil, false
	}
	emb = grow(ws.ref, dim)
	ws.ref = emb
	for i := range emb {
		x := math.Float32frombits(binary.LittleEndian.Uint32(p[4*i:]))
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return "", nil, false
		}
		emb[i] = x
	}
	return hash, emb, true
}
