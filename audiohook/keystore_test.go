package audiohook

import (
	"context"
	"testing"
)

func TestKeysFromJSON(t *testing.T) {
	k, err := KeysFromJSON([]byte(`{"R2VuZXN5c2Nsb3Vk":"YTEyMzQ1Njc4OQ==","open":"","nul":null}`))
	if err != nil {
		t.Fatal(err)
	}
	s, ok, _ := k.Secret(context.Background(), "R2VuZXN5c2Nsb3Vk")
	if !ok || string(s) != "a123456789" {
		t.Fatalf("secret %q %v", s, ok)
	}
	for _, key := range []string{"open", "nul"} {
		if s, ok, _ := k.Secret(context.Background(), key); !ok || len(s) != 0 {
			t.Fatalf("%s: %q %v", key, s, ok)
		}
	}
	if _, ok, _ := k.Secret(context.Background(), "x"); ok {
		t.Fatal("unknown key found")
	}
	for _, bad := range []string{`[]`, `{"a":1}`, `{"a":"***"}`} {
		if _, err := KeysFromJSON([]byte(bad)); err == nil {
			t.Errorf("KeysFromJSON(%s) accepted", bad)
		}
	}
	t.Setenv("AH_TEST_KEYS", `{"k":"YQ=="}`)
	if k, err := KeysFromEnv("AH_TEST_KEYS"); err != nil || string(k["k"]) != "a" {
		t.Fatalf("KeysFromEnv: %v %v", k, err)
	}
}
