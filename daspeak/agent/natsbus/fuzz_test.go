package natsbus

import (
	"testing"

	"github.com/nats-io/nats.go"
)

// FuzzRecord checks that any headers and body from the bus decode to a
// record or ErrMessage, never a panic, and that a decoded record has the
// headers' values.
func FuzzRecord(f *testing.F) {
	f.Add("1", "started", "", "1700000000000000000", []byte(`{"type":"started"}`))
	f.Add("3", "result-success", "1", "1", []byte(`{}`))
	f.Add("0", "x", "", "1", []byte(nil))
	f.Add("-1", "", "1", "x", []byte("\x00"))
	f.Fuzz(func(t *testing.T, seq, typ, term, ts string, data []byte) {
		h := nats.Header{}
		h.Set(hdrSeq, seq)
		h.Set(hdrType, typ)
		h.Set(hdrTerminal, term)
		h.Set(hdrTime, ts)
		r, err := record(h, data)
		if err != nil {
			return
		}
		if r.Seq == 0 || r.Type == "" || r.Terminal != (term == "1") || string(r.Data) != string(data) {
			t.Fatalf("decoded %+v from %q %q %q %q", r, seq, typ, term, ts)
		}
	})
}
