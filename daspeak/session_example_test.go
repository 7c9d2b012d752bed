package daspeak_test

import (
	"context"
	"encoding/json"
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
			log.Fatal(err) // ctx ended; Next may be called again
		}
		if !ev.IsTerminal() {
			continue // progress: ev.NetSpeech of ev.NetSpeechNeeded
		}
		switch ev.Type {
		case daspeak.EventResultSuccess:
			// With a Store, success means the store kept the credential.
			fmt.Println(ev.Type, ev.NetSpeech >= ev.NetSpeechNeeded, ev.Stored, credentials["+34600000000"] == ev.Credential)
		case daspeak.EventErrorStore:
			// The store failed after its retries: ev.Credential,
			// ev.ModelHash and ev.Audio must be kept some other way.
			log.Print(ev.Err)
		default:
			log.Print(ev.Type, ev.Err)
		}
		break
	}
	// Output: result-success true true true
}

// ExampleEvent_MarshalJSON shows an event as a user interface gets it: the
// credential and the audio stay out unless the session's
// Config.CredentialInJSON or Config.AudioInJSON asks for them, and an engine
// without anti-spoofing is reported as such rather than as an authenticity.
func ExampleEvent_MarshalJSON() {
	ev := daspeak.Event{
		Type:                daspeak.EventResultSuccess,
		Operation:           daspeak.OperationRegister,
		NetSpeech:           5020 * time.Millisecond,
		NetSpeechNeeded:     5 * time.Second,
		AudioDuration:       6400 * time.Millisecond,
		ModelHash:           "m1",
		EngineNetSpeech:     4900 * time.Millisecond,
		EngineAudioDuration: 6400 * time.Millisecond,
		AntiSpoofing:        daspeak.AntiSpoofingNotPerformed,
		Authenticity:        daspeak.AuthenticityNotPerformed,
		Credential:          "biometric data",
		Audio:               []byte("RIFF…"),
		Stored:              true,
	}
	b, err := json.Marshal(ev)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(b))
	// Output:
	// {"type":"result-success","operation":"register","net_speech":5.02,"net_speech_needed":5,"audio_duration":6.4,"model_hash":"m1","engine_net_speech":4.9,"engine_audio_duration":6.4,"anti_spoofing":"not-performed","stored":true}
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
