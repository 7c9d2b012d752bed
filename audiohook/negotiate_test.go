package audiohook

import (
	"testing"
)

// TestMediaNegotiation checks that the server selects the first of its own
// preferences that the client offered, whatever the order of the offer,
// copying the offered entry exactly (channel order included).
func TestMediaNegotiation(t *testing.T) {
	extInt := MediaParameter{Type: "audio", Format: FormatPCMU, Channels: []string{ChannelInternal, ChannelExternal}, Rate: 8000}
	tests := []struct {
		name  string
		prefs []MediaParameter
		offer []MediaParameter
		want  *MediaParameter
	}{
		{"default prefers stereo PCMU", nil, GenesysOffer, &MediaPCMUStereo},
		{"default prefers stereo over offer order", nil, []MediaParameter{MediaPCMUExternal, MediaPCMUStereo}, &MediaPCMUStereo},
		{"server order wins", []MediaParameter{MediaL16External, MediaPCMUStereo},
			[]MediaParameter{MediaPCMUStereo, MediaL16External}, &MediaL16External},
		{"mono agent only", []MediaParameter{MediaPCMUInternal}, GenesysOffer, &MediaPCMUInternal},
		{"nothing in common", []MediaParameter{MediaL16Stereo}, GenesysOffer, nil},
		{"channel order matters", nil, []MediaParameter{extInt}, nil},
		{"reversed stereo when preferred", []MediaParameter{extInt}, []MediaParameter{MediaPCMUStereo, extInt}, &extInt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := signedServerOptions(t)
			opts.Media = tt.prefs
			infos := make(chan *OpenInfo, 1)
			url := testServer(t, opts, func(s *Session) {
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
