package audiohooktest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/voicegate/voicegate/audiohook/wire"
)

// NewUUID returns a random version 4 UUID, for session, conversation and
// participant ids.
func NewUUID() string {
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

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("audiohooktest: marshal " + err.Error())
	}
	return b
}

func formatDuration(d time.Duration) string { return wire.Duration(d).String() }

// appendClientMessage appends a client message envelope.
func appendClientMessage(dst []byte, typ, id string, seq, serverSeq int64, pos time.Duration, params []byte) []byte {
	dst = append(dst, `{"version":"2","type":"`...)
	dst = append(dst, typ...)
	dst = append(dst, `","seq":`...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, `,"serverseq":`...)
	dst = strconv.AppendInt(dst, serverSeq, 10)
	dst = append(dst, `,"position":"`...)
	dst = append(dst, formatDuration(pos)...)
	dst = append(dst, `","id":"`...)
	dst = append(dst, id...)
	dst = append(dst, `","parameters":`...)
	if len(params) == 0 {
		params = []byte("{}")
	}
	dst = append(dst, params...)
	return append(dst, '}')
}
