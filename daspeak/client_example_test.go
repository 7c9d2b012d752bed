package daspeak_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math"
	"os"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/daspeaktest"
)

// exampleCall returns a WAV file like a telephone recording: 8 kHz μ-law
// mono, with speech seconds of a tone standing in for a voice, then a
// second of silence. Real applications send recorded calls.
func exampleCall(freq, speech float64) []byte {
	n := int(speech * 8000)
	pcm := make([]int16, n+8000)
	for i := range n {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*freq*float64(i)/8000))
	}
	ulaw := make([]byte, len(pcm))
	codec.EncodeULaw(ulaw, pcm)
	wav, err := codec.EncodeWAV(nil, codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1}, ulaw)
	if err != nil {
		panic(err)
	}
	return wav
}

// A client of the Veridas cloud authenticates with the API key of the
// gateway. Pick the environment of your contract; a self-hosted das-Peak
// takes BaseURL and no key instead.
func ExampleNewClient() {
	c, err := daspeak.NewClient(&daspeak.ClientOptions{
		Environment: daspeak.ProductionEU,
		APIKey:      os.Getenv("DASPEAK_APIKEY"),
		Timeout:     20 * time.Second, // per attempt
		MaxRetries:  2,                // on 429, 5xx and transport errors
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.BaseURL())

	selfHosted, err := daspeak.NewClient(&daspeak.ClientOptions{BaseURL: "http://daspeak.internal:8080/daspeak/v1"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(selfHosted.BaseURL())
	// Output:
	// https://api.eu.veri-das.com/daspeak/v1
	// http://daspeak.internal:8080/daspeak/v1
}

// Deployments that sit behind an OAuth2 gateway use a client-credentials
// token source. Veridas publishes no token URL for das-Peak: take it from
// your deployment. Here the emulator's own token endpoint stands in.
func ExampleNewClient_oauth2() {
	srv := daspeaktest.NewServer(daspeaktest.FakeEngine{}, &daspeaktest.Options{
		OAuthClientID: "contact-center", OAuthClientSecret: "s3cret",
	})
	defer srv.Close()

	c, err := daspeak.NewClient(&daspeak.ClientOptions{
		BaseURL: srv.URL(),
		OAuth2: &clientcredentials.Config{
			ClientID:     "contact-center",
			ClientSecret: "s3cret",
			TokenURL:     srv.TokenURL(),
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	models, err := c.Models(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("newest model:", models[len(models)-1])
	// Output: newest model: fake-model-0001
}

// Register a caller, then verify a later call against the stored
// credential. das-Peak makes no decision: the application applies its own
// score threshold. The daspeaktest emulator stands in for das-Peak.
func ExampleClient_GenerateCredential() {
	srv := daspeaktest.NewServer(daspeaktest.FakeEngine{}, nil)
	defer srv.Close()
	c, err := daspeak.NewClient(&daspeak.ClientOptions{BaseURL: srv.URL()})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	models, err := c.Models(ctx)
	if err != nil {
		log.Fatal(err)
	}
	hash := models[len(models)-1] // the newest restModel

	reg, err := c.GenerateCredential(ctx, hash, exampleCall(300, 5), nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("registered: %.1f s of net speech\n", reg.NetSpeechDuration)
	// Store reg.Credential with reg.Model.Hash, and keep the audio to
	// regenerate the credential when the restModel changes.

	const threshold = 0.7
	for _, call := range []struct {
		who   string
		audio []byte
	}{{"same caller", exampleCall(300, 5)}, {"impostor", exampleCall(450, 5)}} {
		res, err := c.CompareCredentialToAudio(ctx, reg.Credential, call.audio, nil)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: score %.2f, verified %v\n", call.who, res.Score, res.Score >= threshold)
	}

	// Too little speech is an *APIError carrying what das-Peak detected.
	_, err = c.GenerateCredential(ctx, hash, exampleCall(300, 1.5), nil)
	var apiErr *daspeak.APIError
	if errors.Is(err, daspeak.ErrNetSpeechTooShort) && errors.As(err, &apiErr) {
		fmt.Printf("ask the caller to keep talking: %.2f s of %.2f s\n", apiErr.Detected, apiErr.Required)
	}
	// Output:
	// registered: 5.0 s of net speech
	// same caller: score 0.99, verified true
	// impostor: score 0.05, verified false
	// ask the caller to keep talking: 1.50 s of 3.00 s
}

// Identification scores one voice against many enrolled callers.
func ExampleClient_IdentifyAudio() {
	srv := daspeaktest.NewServer(nil, nil)
	defer srv.Close()
	c, err := daspeak.NewClient(&daspeak.ClientOptions{BaseURL: srv.URL()})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	var cands []daspeak.Candidate
	for i, id := range []string{"ana", "ben", "eva"} {
		r, err := c.GenerateCredential(ctx, daspeaktest.FakeModel, exampleCall(250+float64(i)*70, 4), nil)
		if err != nil {
			log.Fatal(err)
		}
		cands = append(cands, daspeak.Candidate{ID: id, Credential: r.Credential})
	}
	res, err := c.IdentifyAudio(ctx, exampleCall(320, 4), cands, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("best: %s (%.2f) of %d\n", res.Best.ID, res.Best.Score, len(res.Scores))
	// Output: best: ben (0.99) of 3
}
