package audiohooktest

import (
	"os"
	"testing"
	"time"

	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/audiohook/wire"
	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/internal/fixtures"
)

// TestInteropFixtureWAV streams a recorded call through client and server and
// checks the server receives the file's μ-law bytes unchanged.
func TestInteropFixtureWAV(t *testing.T) {
	names := fixtures.Utterances("slt")
	if len(names) == 0 {
		t.Skip("no slt fixtures")
	}
	path := fixtures.Path(names[0])
	if _, err := os.Stat(path); err != nil {
		t.Skipf("fixture %s missing: %v", path, err)
	}
	w := fixtures.LoadWAV(t, names[0])
	res := make(chan serverResult, 1)
	opts := signedServerOptions(t)
	opts.Buffer = time.Minute // a fast sender must not outrun the reader into drops
	url := testServer(t, opts, func(s *audiohook.Session) { readAll(t, s, res) })
	ctx := ctxT(t)
	c, err := Dial(ctx, url, signedDial(t, &DialOptions{Media: []wire.MediaParameter{wire.MediaPCMUExternal}}))
	if err != nil {
		t.Fatal(err)
	}
	src, err := WAVSource(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Stream(ctx, src, &StreamOptions{Fast: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx, ""); err != nil {
		t.Fatal(err)
	}
	r := <-res
	var got []byte
	for _, f := range r.frames {
		got = append(got, f.Payload...)
	}
	if len(got) != len(w.Data) {
		t.Fatalf("received %d bytes, file has %d", len(got), len(w.Data))
	}
	for i, b := range w.Data {
		want := codec.EncodeULawSample(codec.DecodeULawSample(b)) // 0x7F is sent as 0xFF
		if got[i] != want {
			t.Fatalf("byte %d: %#x, want %#x", i, got[i], want)
		}
	}
	if end := r.frames[len(r.frames)-1].End(); end != w.Duration() || r.stats.FramesDropped != 0 {
		t.Fatalf("end %v, file %v, dropped %d", end, w.Duration(), r.stats.FramesDropped)
	}
}
