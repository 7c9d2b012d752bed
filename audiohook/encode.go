package audiohook

import (
	"encoding/json"
	"strconv"
)

// appendServerMessage appends a server message: the envelope and params
// ({} when empty).
func appendServerMessage(dst []byte, typ, id string, seq, clientSeq int64, params []byte) []byte {
	dst = append(dst, `{"version":"2","type":"`...)
	dst = append(dst, typ...)
	dst = append(dst, `","seq":`...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, `,"clientseq":`...)
	dst = strconv.AppendInt(dst, clientSeq, 10)
	dst = append(dst, `,"id":"`...)
	dst = append(dst, id...)
	dst = append(dst, `","parameters":`...)
	if len(params) == 0 {
		params = []byte("{}")
	}
	dst = append(dst, params...)
	return append(dst, '}')
}

// mustJSON marshals v, which is always one of this package's parameter
// types and so never fails.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("audiohook: marshal " + err.Error())
	}
	return b
}
