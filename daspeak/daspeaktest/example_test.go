package daspeaktest_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/daspeaktest"
)

// Test code that uses das-Peak against the emulator, with the same API key
// check as the Veridas gateway.
func ExampleNewServer() {
	srv := daspeaktest.NewServer(daspeaktest.FakeEngine{}, &daspeaktest.Options{APIKey: "test-key"})
	defer srv.Close()

	c, err := daspeak.NewClient(&daspeak.ClientOptions{BaseURL: srv.URL(), APIKey: "test-key"})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Alive(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Println("requests to /alive:", srv.Requests("/alive"))
	// Output: requests to /alive: 1
}

// Inject makes the emulator fail like a busy deployment; the client retries
// and the counters show how many attempts it made.
func ExampleEmulator_Inject() {
	srv := daspeaktest.NewServer(nil, nil)
	defer srv.Close()
	srv.Inject(daspeaktest.Fault{Endpoint: "/models", Status: 503, Times: 2})

	c, err := daspeak.NewClient(&daspeak.ClientOptions{
		BaseURL:      srv.URL(),
		RetryBackoff: time.Millisecond,
	})
	if err != nil {
		log.Fatal(err)
	}
	models, err := c.Models(context.Background())
	fmt.Println(models, err, srv.Requests("/models"))

	srv.Inject(daspeaktest.Fault{Exception: daspeak.ExceptionSignalNoiseRatio})
	_, err = c.Models(context.Background())
	fmt.Println(errors.Is(err, daspeak.ErrSignalNoiseRatio))
	// Output:
	// [fake-model-0001] <nil> 3
	// true
}
