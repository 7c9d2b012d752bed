package twilio

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

type captureRT struct{ url string }

func (c *captureRT) RoundTrip(r *http.Request) (*http.Response, error) {
	c.url = r.URL.String()
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(`{"valid":false,"message":"nope"}`)), Header: http.Header{}}, nil
}

func TestFlexRealmHost(t *testing.T) {
	for realm, want := range map[string]string{
		"":       "https://iam.twilio.com/v1/Accounts/AC1/Tokens/validate",
		"ie1":    "https://iam.ie1.twilio.com/v1/Accounts/AC1/Tokens/validate",
		"ie1-ix": "https://iam.ie1.twilio.com/v1/Accounts/AC1/Tokens/validate",
	} {
		rt := &captureRT{}
		v, err := NewFlexValidator(&FlexValidatorOptions{AccountSID: "AC1", AuthToken: "t", Realm: realm, HTTPClient: &http.Client{Transport: rt}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Validate(context.Background(), "tok"); err == nil || !strings.Contains(err.Error(), "nope") {
			t.Errorf("realm %q: %v", realm, err)
		}
		if rt.url != want {
			t.Errorf("realm %q: url %s", realm, rt.url)
		}
	}
}
