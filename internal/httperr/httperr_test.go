package httperr

import (
	"net/http/httptest"
	"testing"
)

func TestWrite(t *testing.T) {
	for _, c := range []struct {
		status          int
		code, msg, want string
		retryAfter      string
	}{
		{403, "forbidden", "invalid signature", `{"code":"forbidden","error":"invalid signature"}` + "\n", ""},
		{503, "unavailable", "busy", `{"code":"unavailable","error":"busy"}` + "\n", "1"},
		{400, "bad_request", `a "quoted" <b>`, `{"code":"bad_request","error":"a \"quoted\" \u003cb\u003e"}` + "\n", ""},
	} {
		w := httptest.NewRecorder()
		Write(w, c.status, c.code, c.msg)
		if w.Code != c.status || w.Body.String() != c.want || w.Header().Get("Content-Type") != "application/json" ||
			w.Header().Get("Retry-After") != c.retryAfter || w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%d %s: %d %q %v", c.status, c.code, w.Code, w.Body, w.Header())
		}
	}
}
