package wire

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
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

// appendClientMessage appends a client message as Genesys writes it.
func appendClientMessage(dst []byte, typ, id string, seq, serverSeq int64, pos time.Duration, params []byte) []byte {
	dst = append(dst, `{"version":"2","type":"`...)
	dst = append(dst, typ...)
	dst = append(dst, `","seq":`...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, `,"serverseq":`...)
	dst = strconv.AppendInt(dst, serverSeq, 10)
	dst = append(dst, `,"position":"`...)
	dst = appendDuration(dst, pos)
	dst = append(dst, `","id":"`...)
	dst = append(dst, id...)
	dst = append(dst, `","parameters":`...)
	if len(params) == 0 {
		params = []byte("{}")
	}
	dst = append(dst, params...)
	return append(dst, '}')
}
