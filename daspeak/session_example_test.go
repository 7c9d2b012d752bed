package daspeak_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/offline"
)

// frameReader plays a WAV file as 20 ms frames, standing in for a Twilio or
// AudioHook stream.
func frameReader(path string) *codec.WAVFrameReader {
	b, err := os.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	w, err := codec.ParseWAV(b)
	if err != nil {
		log.Fatal(err)
	}
	return codec.NewWAVFrameReader(w, 20*time.Millisecond)
}

// ExampleRegister enrols a caller with the offline engine and keeps the
// credential in a map.
func ExampleRegister() {
	ctx := context.Background()
	credentials := map[string]string{}
	store := daspeak.StoreFunc(func(ctx context.Context, callerID, credential, modelHash string, audio []byte) error {
		credentials[callerID] = credential
		return nil
	})
	s, err := daspeak.Register(frameReader("../testdata/voices/slt_1.wav"), offline.New(nil), &daspeak.Config{
		AudioTotalDuration: 4 * time.Second,
		Store:              store,
		CallerID:           "+34600000000",
	})
	if err != nil {
		log.Fatal(err)
	}
	for {
		ev, err := s.Next(ctx)
		if err != nil {
			log.Fatal(err)
		}
		if !ev.IsTerminal() {
			continue // progress: ev.NetSpeech of ev.NetSpeechNeeded
		}
		fmt.Println(ev.Type, ev.NetSpeech >= ev.NetSpeechNeeded, ev.Stored, credentials["+34600000000"] == ev.Credential)
		break
	}
	// Output: result-success true true true
}

// ExampleVerify scores a caller against the credential made at
// registration, and an impostor against the same credential.
func ExampleVerify() {
	ctx := context.Background()
	engine := offline.New(nil)
	final := func(s *daspeak.Session) daspeak.Event {
		for {
			ev, err := s.Next(ctx)
			if err != nil {
				log.Fatal(err)
			}
			if ev.IsTerminal() {
				return ev
			}
		}
	}
	reg, _ := daspeak.Register(frameReader("../testdata/voices/awb_1.wav"), engine, nil)
	credential := final(reg).Credential

	for _, caller := range []string{"awb_2", "kal_2"} {
		s, err := daspeak.Verify(frameReader("../testdata/voices/"+caller+".wav"), engine, credential, &daspeak.Config{ScoreThreshold: 0.5})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(caller, final(s).Type)
	}
	// Output:
	// awb_2 result-success
	// kal_2 result-fail-score
}
