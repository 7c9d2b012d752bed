package allow

import (
	"crypto/sha256"
	"testing"
	"time"
)

func TestCache(t *testing.T) {
	t0 := time.Unix(1000, 0)
	k := func(s string) [32]byte { return sha256.Sum256([]byte(s)) }
	c := New(5*time.Second, 2)
	if c.Allowed(k("a"), t0) {
		t.Fatal("a key never granted is allowed")
	}
	c.Grant(k("a"), t0)
	if !c.Allowed(k("a"), t0.Add(4*time.Second)) {
		t.Error("a grant is not kept for its ttl")
	}
	if c.Allowed(k("a"), t0.Add(5*time.Second)) {
		t.Error("a grant is kept past its ttl")
	}
	c.Grant(k("a"), t0)
	c.Grant(k("b"), t0)
	c.Grant(k("c"), t0)
	if n := len(c.m); n > 2 {
		t.Errorf("%d grants held, bound 2", n)
	}
	if !c.Allowed(k("c"), t0) {
		t.Error("the newest grant was dropped to make room")
	}
	off := New(0, 10)
	off.Grant(k("a"), t0)
	if off.Allowed(k("a"), t0) {
		t.Error("a cache with ttl 0 keeps a grant")
	}
}
