package credstoretest_test

import (
	"crypto/rand"
	"testing"

	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/credstore/credstoretest"
)

// testEncryptedMemory is a conformance test as a Store implementation's own
// _test.go file holds it (there named TestXxx so that go test runs it):
// newStore returns a fresh, empty store for every subtest and registers its
// cleanup on the subtest's t.
func testEncryptedMemory(t *testing.T) {
	credstoretest.Run(t, func(t *testing.T) credstore.Store {
		secret := make([]byte, credstore.KeySize)
		rand.Read(secret)
		ring, err := credstore.NewKeyring(credstore.Key{ID: "test", Secret: secret})
		if err != nil {
			t.Fatal(err)
		}
		s, err := credstore.NewEncrypted(credstore.NewMemory(), ring, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// Run the conformance suite against a store, here the encryption wrapper
// over the memory store. Run it with go test -race.
func ExampleRun() {
	_ = testEncryptedMemory
}
