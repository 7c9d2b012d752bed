package main

import (
	"net/http"
	"testing"

	"github.com/voicegate/voicegate/daspeak/agent/genesys"
	"github.com/voicegate/voicegate/internal/pagetest"
)

// TestPagesRefuseFraming: the fake's index (which shows the trial
// credentials) may be framed by no site; the widget page only by the
// Genesys Cloud apps host it is built for.
func TestPagesRefuseFraming(t *testing.T) {
	f := startFake(t)
	for _, c := range []struct{ path, ancestors string }{
		{"/", "'none'"},
		{genesys.DefaultWidgetPath, "https://apps." + fakeRegion},
	} {
		req, err := http.NewRequest("GET", f.base+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Sec-Fetch-Dest", "iframe")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := f.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", c.path, resp.StatusCode)
		}
		t.Run(c.path, func(t *testing.T) { pagetest.CheckHeaders(t, resp.Header, c.ancestors) })
	}
}
