package twilio

import (
	"errors"
	"strings"
	"testing"
)

func TestTwiML(t *testing.T) {
	got, err := NewTwiML().StartStream(StreamNoun{
		Name: "vb-enroll", URL: "wss://vb.example.com/twilio/media", Track: TrackInbound,
		StatusCallback: "https://vb.example.com/twilio/stream-status?a=1&b=2", StatusCallbackMethod: "POST",
		Parameters: []Parameter{{"enrollmentId", "u-42"}, {"mode", `"verify" <&> 'x'`}},
	}).Say("Please state your passphrase.").Pause(10).String()
	if err != nil {
		t.Fatal(err)
	}
	want := `<?xml version="1.0" encoding="UTF-8"?><Response><Start><Stream name="vb-enroll" url="wss://vb.example.com/twilio/media" track="inbound_track" statusCallback="https://vb.example.com/twilio/stream-status?a=1&amp;b=2" statusCallbackMethod="POST"><Parameter name="enrollmentId" value="u-42"/><Parameter name="mode" value="&quot;verify&quot; &lt;&amp;&gt; &apos;x&apos;"/></Stream></Start><Say>Please state your passphrase.</Say><Pause length="10"/></Response>`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	got, err = NewTwiML().ConnectStream(StreamNoun{URL: "wss://vb.example.com/twilio/media", Parameters: []Parameter{{"k", "v\nw"}}}).Hangup().String()
	want = `<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://vb.example.com/twilio/media"><Parameter name="k" value="v&#xA;w"/></Stream></Connect><Hangup/></Response>`
	if err != nil || got != want {
		t.Errorf("got %s %v", got, err)
	}
	got, err = NewTwiML().StopStream("vb-enroll").String()
	if want := `<?xml version="1.0" encoding="UTF-8"?><Response><Stop><Stream name="vb-enroll"/></Stop></Response>`; err != nil || got != want {
		t.Errorf("got %s %v", got, err)
	}
	got, _ = NewTwiML().StartStream(StreamNoun{URL: "wss://a/b"}).Say("a\x01b").String()
	if !strings.Contains(got, "<Stream url=\"wss://a/b\"/>") || !strings.Contains(got, "<Say>a\uFFFDb</Say>") {
		t.Errorf("got %s", got)
	}
}

// TestTwiMLConnectAction checks <Connect action method> and <Redirect>
// byte for byte; attribute names as in Twilio's <Connect> and <Redirect>
// documentation.
func TestTwiMLConnectAction(t *testing.T) {
	const head = `<?xml version="1.0" encoding="UTF-8"?><Response>`
	for _, tc := range []struct {
		name string
		doc  *TwiML
		want string
	}{
		{"connect with action and method",
			NewTwiML().Say("Please speak.").ConnectStreamWith(
				StreamNoun{URL: "wss://ivr.example.com/twilio/media", Parameters: []Parameter{{"session", "9f"}}},
				ConnectOptions{Action: "https://ivr.example.com/twiml/result?session=9f&op=verify", Method: "POST"}),
			head + `<Say>Please speak.</Say><Connect action="https://ivr.example.com/twiml/result?session=9f&amp;op=verify" method="POST"><Stream url="wss://ivr.example.com/twilio/media"><Parameter name="session" value="9f"/></Stream></Connect></Response>`},
		{"connect with action only",
			NewTwiML().ConnectStreamWith(StreamNoun{Name: "s", URL: "wss://a/b"}, ConnectOptions{Action: "/next"}),
			head + `<Connect action="/next"><Stream name="s" url="wss://a/b"/></Connect></Response>`},
		{"connect without options is ConnectStream",
			NewTwiML().ConnectStreamWith(StreamNoun{URL: "wss://a/b"}, ConnectOptions{}),
			head + `<Connect><Stream url="wss://a/b"/></Connect></Response>`},
		{"redirect",
			NewTwiML().Say("Done.").Redirect("https://flow.example.com/next?a=1&b=<2>", "POST"),
			head + `<Say>Done.</Say><Redirect method="POST">https://flow.example.com/next?a=1&amp;b=&lt;2&gt;</Redirect></Response>`},
		{"redirect, default method",
			NewTwiML().Redirect("/next", ""),
			head + `<Redirect>/next</Redirect></Response>`},
	} {
		got, err := tc.doc.String()
		if err != nil || got != tc.want {
			t.Errorf("%s:\n got %s %v\nwant %s", tc.name, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		name string
		doc  *TwiML
	}{
		{"connect method PUT", NewTwiML().ConnectStreamWith(StreamNoun{URL: "wss://a/b"}, ConnectOptions{Action: "/x", Method: "PUT"})},
		{"connect method lower case", NewTwiML().ConnectStreamWith(StreamNoun{URL: "wss://a/b"}, ConnectOptions{Method: "post"})},
		{"redirect without url", NewTwiML().Redirect("", "POST")},
		{"redirect method DELETE", NewTwiML().Redirect("/x", "DELETE")},
	} {
		if _, err := tc.doc.Say("never written").String(); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", tc.name, err)
		}
	}
}

func TestTwiMLLimits(t *testing.T) {
	ok := []Parameter{{"k", strings.Repeat("v", 498)}} // 499 < 500
	if _, err := NewTwiML().StartStream(StreamNoun{URL: "wss://a/b", Parameters: ok}).String(); err != nil {
		t.Errorf("499 characters: %v", err)
	}
	for _, tc := range []struct {
		s    StreamNoun
		want error
	}{
		{StreamNoun{URL: "wss://a/b", Parameters: []Parameter{{"k", strings.Repeat("v", 499)}}}, ErrParameterTooLong},
		{StreamNoun{URL: "wss://a/b", Parameters: []Parameter{{"ké", strings.Repeat("é", 498)}}}, ErrParameterTooLong},
		{StreamNoun{URL: "wss://a/b?token=x"}, ErrQueryInStreamURL},
		{StreamNoun{}, ErrInvalidArgument},
		{StreamNoun{URL: "wss://a/b", Parameters: []Parameter{{"", "v"}}}, ErrInvalidArgument},
	} {
		tw := NewTwiML().StartStream(tc.s).Say("after an error nothing is written")
		if _, err := tw.String(); !errors.Is(err, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.s.URL, err, tc.want)
		}
	}
	if _, err := NewTwiML().StopStream("").String(); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("unnamed stop: %v", err)
	}
}

func TestProductURL(t *testing.T) {
	for _, tc := range []struct{ base, product, edge, region, want string }{
		{"", "api", "", "", "https://api.twilio.com"},
		{"", "api", "dublin", "ie1", "https://api.dublin.ie1.twilio.com"},
		{"", "api", "sydney", "", "https://api.sydney.us1.twilio.com"},
		{"", "iam", "", "au1", "https://iam.au1.twilio.com"},
		{"", "flex-api", "", "", "https://flex-api.twilio.com"},
		{"http://127.0.0.1:1/", "api", "dublin", "ie1", "http://127.0.0.1:1"},
	} {
		if got := productURL(tc.base, tc.product, tc.edge, tc.region); got != tc.want {
			t.Errorf("productURL(%+v) = %s", tc, got)
		}
	}
}
