package flex

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/daspeak/offline"
	"github.com/voicegate/voicegate/twilio"
	"github.com/voicegate/voicegate/twilio/twiliotest"
)

// TestSourceCall: Call gives the customer's number (inbound: from;
// outbound: to) and in progress for status in-progress only; unknown calls
// and strings that are not call SIDs wrap agent.ErrNoCall, the latter
// without asking Twilio; a Twilio failure is an error, not ErrNoCall.
func TestSourceCall(t *testing.T) {
	rg := newRig(t, nil)
	ctx := context.Background()
	add := func(c twilio.CallResource) string {
		c.SID = twiliotest.SID("CA")
		rg.fake.AddCall(c)
		return c.SID
	}
	for _, c := range []struct {
		name     string
		call     twilio.CallResource
		caller   string
		progress bool
	}{
		{"inbound", twilio.CallResource{From: "+34 600 00 00 00", To: "+34900000000"}, "+34600000000", true},
		{"outbound-api", twilio.CallResource{From: "+34900000000", To: "+14155550100", Direction: twilio.DirectionOutboundAPI}, "+14155550100", true},
		{"outbound-dial", twilio.CallResource{From: "+34900000000", To: "+14155550101", Direction: twilio.DirectionOutboundDial}, "+14155550101", true},
		{"withheld number", twilio.CallResource{From: "anonymous", To: "+34900000000"}, "", true},
		{"client party", twilio.CallResource{From: "client:agent", To: "+34900000000"}, "", true},
		{"ringing", twilio.CallResource{From: "+34600000000", Status: twilio.CallRinging}, "+34600000000", false},
		{"queued", twilio.CallResource{From: "+34600000000", Status: twilio.CallQueued}, "+34600000000", false},
		{"completed", twilio.CallResource{From: "+34600000000", Status: twilio.CallCompleted}, "+34600000000", false},
	} {
		caller, live, err := rg.src.Call(ctx, add(c.call))
		if err != nil || caller != c.caller || live != c.progress {
			t.Errorf("%s: %q %v %v, want %q %v", c.name, caller, live, err, c.caller, c.progress)
		}
	}
	before := len(rg.fake.Requests())
	for _, id := range []string{"CAnotacall", "CA0000000000000000000000000000000g", "../Accounts", "", "CA00000000000000000000000000000000/x"} {
		if _, live, err := rg.src.Call(ctx, id); !errors.Is(err, agent.ErrNoCall) || live {
			t.Errorf("Call(%q): %v %v", id, live, err)
		}
	}
	if n := len(rg.fake.Requests()); n != before {
		t.Fatalf("%d requests for ids that are not call SIDs", n-before)
	}
	if _, _, err := rg.src.Call(ctx, "CA00000000000000000000000000000000"); !errors.Is(err, agent.ErrNoCall) {
		t.Fatalf("unknown call: %v", err)
	}
	rg.fake.SetFaults(twiliotest.Fault{PathPrefix: "/2010-04-01/", Status: 500, Code: 20500, Message: "boom"})
	defer rg.fake.SetFaults()
	if _, _, err := rg.src.Call(ctx, add(twilio.CallResource{From: "+34600000000"})); err == nil || errors.Is(err, agent.ErrNoCall) {
		t.Fatalf("Twilio failing: %v", err)
	}
}

// TestAgentAPICallBinding: behind an agent.Server, the Flex Source ties
// requests to Twilio's call: no register under another number than the
// call's customer, no delete and no "in progress" for a call that does not
// exist, and the caller of an empty caller_id is the call's.
func TestAgentAPICallBinding(t *testing.T) {
	rg := newRig(t, nil)
	mem := credstore.NewMemory()
	if err := mem.Put(context.Background(), "+34911111111", credstore.Record{Credential: "c"}); err != nil {
		t.Fatal(err)
	}
	api, err := agent.NewServer(&agent.Options{
		Engine: offline.New(nil), Store: &agent.CredentialStore{Store: mem}, Source: rg.src,
		Authenticator: agent.AuthenticatorFunc(func(context.Context, *http.Request) (agent.Principal, error) {
			return agent.Principal{Subject: "WK1"}, nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer api.Shutdown(context.Background())
	live := twiliotest.SID("CA")
	rg.fake.AddCall(twilio.CallResource{SID: live, From: "+34600000000", To: "+34900000000"})
	ended := twiliotest.SID("CA")
	rg.fake.AddCall(twilio.CallResource{SID: ended, From: "+34911111111", To: "+34900000000", Status: twilio.CallCompleted})
	post := func(path, body string) (int, map[string]any) {
		t.Helper()
		w := httptest.NewRecorder()
		api.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/agent"+path, strings.NewReader(body)))
		var m map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatalf("%s: %q", path, w.Body)
		}
		return w.Code, m
	}
	for _, c := range []struct {
		path, body string
		code       int
		want       map[string]any
	}{
		{"/register", `{"call_id":"` + live + `","caller_id":"+34911111111"}`, 400, map[string]any{"code": "bad_caller_id"}},
		{"/delete", `{"call_id":"CA00000000000000000000000000000000","caller_id":"+34911111111"}`, 409, map[string]any{"code": "no_call"}},
		{"/delete", `{"call_id":"` + ended + `","caller_id":"+34911111111"}`, 409, map[string]any{"code": "no_call"}},
		{"/verify", `{"call_id":"` + ended + `","caller_id":"+34911111111"}`, 409, map[string]any{"code": "no_call"}},
		{"/status", `{"call_id":"CAnotacall","caller_id":"+34911111111"}`, 200, map[string]any{"call_in_progress": false, "registered": false}},
		{"/status", `{"call_id":"` + ended + `","caller_id":"+34911111111"}`, 200, map[string]any{"call_in_progress": false, "registered": true}},
		{"/status", `{"call_id":"` + live + `","caller_id":""}`, 200, map[string]any{"call_in_progress": true, "registered": false, "caller_id": "+34600000000"}},
	} {
		code, m := post(c.path, c.body)
		ok := code == c.code
		for k, v := range c.want {
			ok = ok && m[k] == v
		}
		if !ok {
			t.Errorf("%s %s: %d %v, want %d %v", c.path, c.body, code, m, c.code, c.want)
		}
	}
	if _, err := mem.Get(context.Background(), "+34911111111"); err != nil {
		t.Fatalf("the credential was deleted: %v", err)
	}
	if n := len(rg.fake.Streams(live)); n != 0 {
		t.Fatalf("%d streams started", n)
	}
	// Twilio unreachable: the lookup fails, nothing is answered from it.
	rg.fake.SetFaults(twiliotest.Fault{PathPrefix: "/2010-04-01/", Status: 503, Code: 20503, Message: "down"})
	defer rg.fake.SetFaults()
	start := time.Now()
	if code, m := post("/status", `{"call_id":"`+live+`","caller_id":"+34600000000"}`); code != 500 || m["code"] != "internal" {
		t.Fatalf("status with Twilio down: %d %v (%v)", code, m, time.Since(start))
	}
}
