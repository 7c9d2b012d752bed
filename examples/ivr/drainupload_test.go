package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/fixtures"
)

// TestDrainRefusesLargeUpload: a draining server refuses an upload as
// large as the limit (16 MiB) with its 503 and Retry-After, and the
// client, still sending the body over a real loopback connection, reads
// that answer instead of a reset connection (a broken pipe): the server
// reads the body to its end, within a short deadline, before answering.
func TestDrainRefusesLargeUpload(t *testing.T) {
	e := newEnv(t)
	e.srv.draining.Store(true)
	body := make([]byte, maxWAV)
	copy(body, "RIFF")
	for i := range 3 {
		req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/register?caller=%2B34600000950", strings.NewReader(string(body)))
		req.Header.Set("X-API-Key", apiKey)
		req.Header.Set("Content-Type", "audio/wav")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("upload %d to a draining server: %v, want its 503", i, err)
		}
		var answer map[string]string
		derr := json.NewDecoder(resp.Body).Decode(&answer)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || derr != nil || answer["error"] != errDraining.Error() || resp.Header.Get("Retry-After") != "1" {
			t.Fatalf("upload %d to a draining server: %d %v %v", i, resp.StatusCode, answer, derr)
		}
	}
	// The same on a bare connection: all of the request written, then
	// the answer read.
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.http.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	werr := make(chan error, 1)
	go func() {
		_, err := fmt.Fprintf(conn, "POST /verify?caller=%%2B34600000950 HTTP/1.1\r\nHost: ivr\r\nX-API-Key: %s\r\nContent-Type: audio/wav\r\nContent-Length: %d\r\n\r\n", apiKey, len(body))
		if err == nil {
			_, err = conn.Write(body)
		}
		werr <- err
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to an upload on a bare connection: %v", err)
	}
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(got), errDraining.Error()) {
		t.Fatalf("upload on a bare connection: %d %s", resp.StatusCode, got)
	}
	if err := <-werr; err != nil {
		t.Fatalf("sending the upload: %v (the server did not read it)", err)
	}
}

// TestRefusedLargeUpload: an upload refused before it is read (a caller
// already registered: 409) is read to its end first, so the client still
// sending it over a real connection reads the 409, not a broken pipe.
func TestRefusedLargeUpload(t *testing.T) {
	e := newEnv(t)
	const caller = "+34600000951"
	if code, d := e.do(http.MethodPost, "/register?caller=%2B34600000951", "audio/wav", wav(t, fixtures.Utterances("rms")[0])); code != http.StatusOK || d.Status != statusSuccess {
		t.Fatalf("register %s: %d %+v", caller, code, d)
	}
	body := make([]byte, maxWAV)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.http.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	werr := make(chan error, 1)
	go func() {
		_, err := fmt.Fprintf(conn, "POST /register?caller=%%2B34600000951 HTTP/1.1\r\nHost: ivr\r\nX-API-Key: %s\r\nContent-Type: audio/wav\r\nContent-Length: %d\r\n\r\n", apiKey, len(body))
		if err == nil {
			_, err = conn.Write(body)
		}
		werr <- err
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	got, _ := io.ReadAll(resp.Body)
	if want := `{"code":"already_registered","error":"` + errAlreadyRegistered.Error() + `"}` + "\n"; resp.StatusCode != http.StatusConflict || string(got) != want {
		t.Fatalf("upload for a registered caller: %d %s", resp.StatusCode, got)
	}
	if err := <-werr; err != nil {
		t.Fatalf("sending the upload: %v (the server did not read it)", err)
	}
}
