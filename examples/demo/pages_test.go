package main

import (
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/pagetest"
)

// TestPagesRefuseFraming: another site must not frame the console or the
// desk and click Delete inside the frame.
func TestPagesRefuseFraming(t *testing.T) {
	d, err := start(t.Context(), options{
		Fast: true, desk: true, Addr: "127.0.0.1:0",
		DB: filepath.Join(t.TempDir(), "creds.db"), Shutdown: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	hc := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	for _, path := range []string{"/", pathDesk} {
		req, err := http.NewRequest("GET", d.base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Sec-Fetch-Dest", "iframe")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
		t.Run(path, func(t *testing.T) { pagetest.CheckHeaders(t, resp.Header, "'none'") })
	}
}
