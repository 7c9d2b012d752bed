package audiohooktest

import (
	"testing"

	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/audiohook/wire"
)

// TestMediaNegotiation checks that the server selects the first of its own
// preferences that the client offered, whatever the order of the offer,
// copying the offered entry exactly (channel order included).
func TestMediaNegotiation(t *testing.T) {
	extInt := wire.MediaParameter{Type: "audio", Format: wire.FormatPCMU, Channels: []string{wire.ChannelInternal, wire.ChannelExternal}, Rate: 8000}
	tests := []struct {
		name  string
		prefs []wire.MediaParameter
		offer []wire.MediaParameter
		want  *wire.MediaParameter
	}{
		{"default prefers stereo PCMU", nil, GenesysOffer, &wire.MediaPCMUStereo},
		{"default prefers stereo over offer order", nil, []wire.MediaParameter{wire.MediaPCMUExternal, wire.MediaPCMUStereo}, &wire.MediaPCMUStereo},
		{"server order wins", []wire.MediaParameter{wire.MediaL16External, wire.MediaPCMUStereo},
			[]wire.MediaParameter{wire.MediaPCMUStereo, wire.MediaL16External}, &wire.MediaL16External},
		{"mono agent only", []wire.MediaParameter{wire.MediaPCMUInternal}, GenesysOffer, &wire.MediaPCMUInternal},
		{"nothing in common", []wire.MediaParameter{wire.MediaL16Stereo}, GenesysOffer, nil},
		{"channel order matters", nil, []wire.MediaParameter{extInt}, nil},
		{"reversed stereo when preferred", []wire.MediaParameter{extInt}, []wire.MediaParameter{wire.MediaPCMUStereo, extInt}, &extInt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := signedServerOptions(t)
			opts.Media = tt.prefs
			infos := make(chan *audiohook.OpenInfo, 1)
			url := testServer(t, opts, func(s *audiohook.Session) {
				info, err := s.Open(ctxT(t))
				if err != nil {
					t.Error(err)
				}
				infos <- info
				<-s.Done()
			})
			ctx := ctxT(t)
			c, err := Dial(ctx, url, signedDial(t, &DialOptions{Media: tt.offer}))
			if err != nil {
				t.Fatal(err)
			}
			got := c.Media()
			op := c.Opened()
			_ = c.Close(ctx, "")
			info := <-infos
			switch {
			case tt.want == nil && (got != nil || len(op.Media) != 0 || info.Media != nil):
				t.Fatalf("selected %+v (server %+v), want none", op.Media, info.Media)
			case tt.want != nil && (got == nil || !got.Equal(*tt.want) || info.Media == nil || !info.Media.Equal(*tt.want) || len(op.Media) != 1):
				t.Fatalf("selected %+v (server %+v), want %+v", op.Media, info.Media, *tt.want)
			}
		})
	}
}
