package audiohook

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

const (
	tOrg  = "d7934305-0972-4844-938e-9060eef73d05"
	tConv = "96b824b3-3c9f-4cb3-9e0e-6a4a7e6c3a11"
	tPart = "bca4ef71-6f8a-4d1a-9a4e-2d0e5b0e8b55"
)

const stereoPCMU = `[{"type":"audio","format":"PCMU","channels":["external","internal"],"rate":8000}]`

func tmsg(id, typ string, seq, serverseq int, pos, params string) string {
	return fmt.Sprintf(`{"version":"2","type":%q,"seq":%d,"serverseq":%d,"position":%q,"id":%q,"parameters":%s}`, typ, seq, serverseq, pos, id, params)
}

func openParams(media string, mod func(m map[string]any)) string {
	m := map[string]any{
		"organizationId": tOrg, "conversationId": tConv,
		"participant": map[string]any{"id": tPart, "ani": "+1", "aniName": "n", "dnis": "+2"},
		"media":       json.RawMessage(media), "language": "en-US",
	}
	if mod != nil {
		mod(m)
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// newUUID returns a random version 4 UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}
