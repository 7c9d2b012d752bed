package twilio_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/voicegate/voicegate/twilio"
	"github.com/voicegate/voicegate/twilio/twiliotest"
)

// TestCall fetches calls from the fake Calls API: a known call's parties,
// status and direction; 404 (20404) for an unknown call; a status change;
// retries of the GET after 5xx and a dropped connection, not after 4xx;
// refused server credentials.
func TestCall(t *testing.T) {
	t.Parallel()
	const (
		inbound  = "CA00000000000000000000000000000a01"
		outbound = "CA00000000000000000000000000000a02"
	)
	srv := twiliotest.NewServer(nil)
	defer srv.Close()
	srv.AddCall(twilio.CallResource{SID: inbound, From: "+34911234567", To: "+34900000000"})
	srv.AddCall(twilio.CallResource{SID: outbound, From: "+34900000000", To: "+14155550100", Direction: twilio.DirectionOutboundDial,
		ParentCallSID: inbound, Status: twilio.CallRinging})
	c := newClient(t, srv, fastRetries)
	ctx := context.Background()

	got, err := c.Call(ctx, inbound)
	want := twilio.CallResource{SID: inbound, AccountSID: twiliotest.DefaultAccountSID, From: "+34911234567", To: "+34900000000",
		Status: "in-progress", Direction: "inbound"}
	if err != nil || *got != want || !got.InProgress() {
		t.Fatalf("inbound call: %+v, %v", got, err)
	}
	got, err = c.Call(ctx, outbound)
	if err != nil || got.Direction != "outbound-dial" || got.To != "+14155550100" || got.ParentCallSID != inbound || got.InProgress() {
		t.Fatalf("outbound call: %+v, %v", got, err)
	}
	last := srv.Requests()[len(srv.Requests())-1]
	if last.Method != http.MethodGet || last.Path != "/2010-04-01/Accounts/"+twiliotest.DefaultAccountSID+"/Calls/"+outbound+".json" {
		t.Fatalf("request %s %s", last.Method, last.Path)
	}

	if _, err := c.Call(ctx, "CA00000000000000000000000000000404"); err == nil {
		t.Fatal("unknown call found")
	} else if e, ok := twilio.IsAPIError(err, 20404); !ok || e.Status != 404 {
		t.Fatalf("unknown call: %v", err)
	}
	if !srv.SetCallStatus(inbound, twilio.CallCompleted) || srv.SetCallStatus("CAnope", twilio.CallCompleted) {
		t.Fatal("SetCallStatus reports the wrong calls")
	}
	if got, err := c.Call(ctx, inbound); err != nil || got.Status != "completed" || got.InProgress() {
		t.Fatalf("hung-up call: %+v, %v", got, err)
	}
	// A completed call refuses streams.
	if _, err := c.StartStream(ctx, inbound, &twilio.StreamParams{URL: "wss://vb.example.com/media", Name: "x"}); err == nil {
		t.Fatal("stream started on a completed call")
	} else if _, ok := twilio.IsAPIError(err, 21220); !ok {
		t.Fatalf("stream on a completed call: %v", err)
	}
	if _, err := c.Call(ctx, ""); !errors.Is(err, twilio.ErrInvalidArgument) {
		t.Fatalf("empty SID: %v", err)
	}

	prefix := "/2010-04-01/Accounts/" + twiliotest.DefaultAccountSID + "/Calls/" + outbound + ".json"
	for _, tc := range []struct {
		name     string
		fault    twiliotest.Fault
		requests int
		code     int // 0: success
	}{
		{"retried after 503", twiliotest.Fault{Status: 503, Code: 20503, Message: "busy", Times: 2}, 3, 0},
		{"retried after a hang-up", twiliotest.Fault{Hangup: true, Times: 1}, 2, 0},
		{"retried after 429", twiliotest.Fault{Status: 429, Code: 20429, Message: "Too Many Requests", Times: 1}, 2, 0},
		{"4xx not retried", twiliotest.Fault{Status: 400, Code: 20001, Message: "bad", Times: 1}, 1, 20001},
	} {
		tc.fault.PathPrefix = prefix
		srv.SetFaults(tc.fault)
		before := countPath(srv, prefix)
		got, err := c.Call(ctx, outbound)
		if n := countPath(srv, prefix) - before; n != tc.requests {
			t.Errorf("%s: %d requests, want %d", tc.name, n, tc.requests)
		}
		if tc.code == 0 && (err != nil || got.SID != outbound) {
			t.Errorf("%s: %+v, %v", tc.name, got, err)
		}
		if _, ok := twilio.IsAPIError(err, tc.code); tc.code != 0 && !ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	srv.SetFaults()

	bad := newClient(t, srv, func(o *twilio.ClientOptions) { o.AuthToken = "wrong" })
	if _, err := bad.Call(ctx, inbound); !errors.Is(err, twilio.ErrServerCredentials) {
		t.Fatalf("refused credentials: %v", err)
	}
}
