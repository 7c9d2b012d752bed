package audiohook

import (
	"errors"
	"net/http/httptest"
	"testing"
)

// TestAcceptBadHeaderIsJSON: an upgrade without a valid
// Audiohook-Session-Id is refused with HTTP 400 (the status is all the
// protocol defines) and the SDK's JSON error body.
func TestAcceptBadHeaderIsJSON(t *testing.T) {
	r := httptest.NewRequest("GET", "http://127.0.0.1/audiohook", nil)
	r.Header.Set("Audiohook-Organization-Id", "d7934305-0972-4844-938e-9060eef73d05")
	r.Header.Set("Audiohook-Correlation-Id", "e160e428-53e2-487c-977d-96989bf5c99d")
	w := httptest.NewRecorder()
	if _, err := Accept(w, r, nil); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("err %v", err)
	}
	if w.Code != 400 || w.Header().Get("Content-Type") != "application/json" ||
		w.Body.String() != `{"code":"bad_request","error":"missing or invalid Audiohook-Session-Id"}`+"\n" {
		t.Fatalf("%d %q %q", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
}
