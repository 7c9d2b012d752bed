package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/daspeak/daspeaktest"
	"github.com/voicegate/voicegate/daspeak/offline"
)

// options configure one run of the demo.
type options struct {
	Fast     bool          // play audio as fast as possible instead of in real time
	Keep     bool          // keep serving the console after the calls, until ctx ends
	Addr     string        // listen address of the protocol endpoints and the console
	DB       string        // SQLite file; "" means one in a temporary directory
	Testdata string        // directory holding voices/; "" means the module's testdata
	Shutdown time.Duration // graceful shutdown timeout

	Out io.Writer    // events and the summary
	Log *slog.Logger // diagnostics

	// desk serves the agent desk even without Keep (tests); deskSpeed > 1
	// plays the desk's simulated calls faster than real time.
	desk        bool
	deskSpeed   float64
	deskOrigins []string // origins allowed to call the desk's agent API
	// ready, when set, is called with the console's base URL once the
	// server is up and before the first call is placed.
	ready func(baseURL string)
	// engineStats, when set, receives the das-Peak emulator's request
	// counters after the calls.
	engineStats func(daspeaktest.Stats)
}

// outcome is the result of one call, for the summary.
type outcome struct {
	callSpec
	Got string
	Err error
}

func (o outcome) ok() bool { return o.Err == nil && o.Got == o.Expected }

// errNotPlayed marks the calls left out after an interruption.
var errNotPlayed = errors.New("not played")

// demo is the running product: das-Peak emulator, credential store,
// protocol endpoints and console, and a player that places calls.
type demo struct {
	log      *slog.Logger
	hub      *hub
	srv      *server
	desk     *desk // nil unless the desk is served
	emu      *daspeaktest.Server
	player   *player
	base     string // console URL without the trailing slash
	testdata string

	cleanups []func() // run in reverse order by close
}

// start brings up everything the calls need. On error, what was started is
// stopped again.
func start(ctx context.Context, o options) (d *demo, err error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Shutdown <= 0 {
		o.Shutdown = 5 * time.Second
	}
	d = &demo{log: log}
	defer func() {
		if err != nil {
			d.close()
			d = nil
		}
	}()
	if d.testdata, err = findTestdata(o.Testdata); err != nil {
		return d, err
	}

	// Credential store: SQLite, enrolment audio next to it.
	dbPath := o.DB
	if dbPath == "" {
		dir, err := os.MkdirTemp("", "voicegate-demo-")
		if err != nil {
			return d, err
		}
		d.onClose(func() { os.RemoveAll(dir) })
		dbPath = filepath.Join(dir, "credentials.db")
	}
	audioDir := filepath.Join(filepath.Dir(dbPath), "enrolment-audio")
	if err := os.MkdirAll(audioDir, 0o700); err != nil {
		return d, err
	}
	store, closeStore, err := openStore(ctx, dbPath)
	if err != nil {
		return d, err
	}
	d.onClose(func() { closeStore() })
	// One adapter for every path that stores or deletes a credential (the
	// scripted calls, the desk's agent API): its audio file names are keyed
	// (a fresh key per run; Record.AudioRef names the file, so a later run
	// still deletes it), and Delete removes the audio with the record.
	creds := &agent.CredentialStore{Store: store, AudioDir: audioDir, AudioKey: randomBytes(2 * agent.MinAudioKeyLen)}
	log.Info("credential store", "sqlite", dbPath, "enrolment_audio", audioDir)

	// Secrets of this run. Nothing here is a real credential.
	dasKey, twToken, ahKey := randomHex(16), randomHex(16), randomHex(12)
	ahSecret := []byte(randomHex(32))

	// das-Peak: the emulator serves the REST API on the offline engine; the
	// sessions use the real REST client against it.
	d.emu = daspeaktest.NewServer(offline.New(nil), &daspeaktest.Options{
		APIKey:          dasKey,
		CredentialModel: offline.CredentialModel,
	})
	d.onClose(d.emu.Close)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	d.onClose(transport.CloseIdleConnections)
	engine, err := daspeak.NewClient(&daspeak.ClientOptions{
		BaseURL:    d.emu.URL(),
		APIKey:     dasKey,
		HTTPClient: &http.Client{Transport: transport},
	})
	if err != nil {
		return d, err
	}
	if err := engine.Alive(ctx); err != nil {
		return d, fmt.Errorf("das-Peak emulator: %w", err)
	}
	models, err := engine.Models(ctx)
	if err != nil {
		return d, fmt.Errorf("das-Peak emulator: %w", err)
	}
	log.Info("das-Peak emulator", "url", d.emu.URL(), "engine", "offline", "models", models)

	// Protocol endpoints and console.
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return d, err
	}
	d.base = "http://" + dialAddr(ln.Addr())
	wsBase := "ws" + strings.TrimPrefix(d.base, "http")
	d.hub = newHub(o.Out, log)
	srvCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.srv = &server{
		log:         log,
		hub:         d.hub,
		engine:      engine,
		store:       store,
		creds:       creds,
		twilioURL:   wsBase + pathTwilio,
		twilioToken: twToken,
		ahKeys:      audiohook.StaticKeys{ahKey: ahSecret},
		ahNonces:    audiohook.NewMemoryNonces(0),
		tracker:     newTracker(),
		ctx:         srvCtx,
		cancel:      cancel,
	}
	var handler http.Handler = d.srv.handler()
	if o.Keep || o.desk {
		// The agent desk, on the agent API of package daspeak/agent.
		dk, err := newDesk(deskOptions{
			BaseURL: d.base, Listen: ln.Addr().String(), Addr: o.Addr, Creds: creds, Testdata: d.testdata,
			Speed: o.deskSpeed, AllowedOrigins: o.deskOrigins, OnDeleted: d.hub.callerDeleted, Log: log,
		})
		if err != nil {
			ln.Close()
			cancel()
			return d, fmt.Errorf("agent desk: %w", err)
		}
		d.desk = dk
		// Closed after the HTTP server (cleanups run in reverse order).
		d.onClose(func() {
			ctx, cancel := context.WithTimeout(context.Background(), o.Shutdown)
			defer cancel()
			dk.close(ctx)
		})
		mux := http.NewServeMux()
		mux.Handle("/", handler)
		dh := dk.handler()
		mux.Handle(pathDesk, dh)
		mux.Handle(pathAgentBase+"/", dh)
		handler = agent.JSONErrors(mux)
	}
	// The console shows caller numbers and the desk hands out its
	// development token, without authentication: only requests addressed
	// to a loopback name are answered (DNS rebinding).
	httpSrv := &http.Server{
		Handler:           agent.LoopbackHostOnly(handler),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()
	d.onClose(func() {
		if d.desk != nil {
			// Ends the desk's operations and event streams, which the
			// HTTP server's Shutdown would otherwise wait for.
			ctx, cancel := context.WithTimeout(context.Background(), o.Shutdown)
			d.desk.shutdown(ctx)
			cancel()
		}
		if err := shutdown(d.hub, d.srv, httpSrv, serveErr, o.Shutdown); err != nil {
			log.Warn("shutdown", "err", err)
		}
	})
	if d.desk != nil {
		log.Info("agent desk", "url", d.base+pathDesk)
	}
	log.Info("listening",
		"console", d.base+"/",
		"twilio", d.srv.twilioURL,
		"audiohook", wsBase+pathAudioHook)

	d.player = &player{
		fast:      o.Fast,
		twilioURL: d.srv.twilioURL,
		twToken:   twToken,
		ahURL:     wsBase + pathAudioHook,
		ahKey:     ahKey,
		ahSecret:  ahSecret,
		tracker:   d.srv.tracker,
	}
	return d, nil
}

func (d *demo) onClose(f func()) { d.cleanups = append(d.cleanups, f) }

// close stops everything start started, in reverse order.
func (d *demo) close() {
	for i := len(d.cleanups) - 1; i >= 0; i-- {
		d.cleanups[i]()
	}
	d.cleanups = nil
}

// playAll places the calls one after the other, printing a header line
// before each, and returns their outcomes. Once ctx ends, the remaining
// calls are not played.
func (d *demo) playAll(ctx context.Context, calls []callSpec) []outcome {
	var outcomes []outcome
	registered := map[string]string{}
	for _, c := range calls {
		if ctx.Err() != nil {
			outcomes = append(outcomes, outcome{callSpec: c, Err: errNotPlayed})
			continue
		}
		wav, err := loadCall(d.testdata, c.Clips)
		if err != nil {
			outcomes = append(outcomes, outcome{callSpec: c, Err: fmt.Errorf("fixtures: %w", err)})
			continue
		}
		d.hub.printf("\n== %s: %s %s of %s: %s, playing %s\n", c.Label, c.Protocol, c.Operation, c.Caller, c.role(registered), clipList(c.Clips))
		got, err := d.player.play(ctx, c, wav)
		if err != nil {
			d.log.Error("call failed", "call", c.Label, "err", err)
		}
		if c.Operation == "register" && got == "result-success" {
			registered[c.Caller] = c.Speaker
		}
		outcomes = append(outcomes, outcome{callSpec: c, Got: got, Err: err})
	}
	return outcomes
}

// run starts the whole product on this machine, plays the scenario's calls
// through both protocols and returns their outcomes. Only setup failures
// are returned as errors; failed calls are outcomes.
func run(ctx context.Context, o options) ([]outcome, error) {
	d, err := start(ctx, o)
	if err != nil {
		return nil, err
	}
	defer d.close()
	if o.ready != nil {
		o.ready(d.base)
	}

	outcomes := d.playAll(ctx, scenario())
	printSummary(d.hub, outcomes)
	stats := d.emu.Stats()
	d.log.Info("das-Peak requests", "total", stats.Requests, "by_endpoint", stats.Endpoints, "errors", stats.Errors, "unauthorized", stats.Unauthorized)
	if o.engineStats != nil {
		o.engineStats(stats)
	}

	if o.Keep && ctx.Err() == nil {
		d.log.Info("calls done; console and agent desk still served until interrupted", "console", d.base+"/", "desk", d.base+pathDesk)
		<-ctx.Done()
	}
	return outcomes, nil
}

// shutdown ends the console streams, stops accepting connections, ends the
// calls in progress and waits for everything, within timeout.
func shutdown(h *hub, srv *server, httpSrv *http.Server, serveErr <-chan error, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	h.close()
	err := httpSrv.Shutdown(ctx)
	if err != nil {
		httpSrv.Close()
	}
	err = errors.Join(err, srv.stopCalls(ctx))
	if serr := <-serveErr; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// printSummary writes the table of outcomes.
func printSummary(h *hub, outcomes []outcome) {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CALL\tPROTOCOL\tOPERATION\tCALLER\tSPEAKER\tEXPECTED\tGOT\t")
	ok := 0
	for _, o := range outcomes {
		got := o.Got
		switch {
		case errors.Is(o.Err, errNotPlayed):
			got = "(not played)"
		case errors.Is(o.Err, context.Canceled):
			got = "(interrupted)"
		case o.Err != nil:
			got = "failed: " + o.Err.Error()
		}
		mark := "ok"
		if o.ok() {
			ok++
		} else {
			mark = "MISMATCH"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", o.Label, o.Protocol, o.Operation, o.Caller, o.Speaker, o.Expected, got, mark)
	}
	tw.Flush()
	h.printf("\n%s%d of %d calls as expected\n", b.String(), ok, len(outcomes))
}

// dialAddr returns the address to dial to reach a listener: a listener on
// all interfaces is reached on loopback.
func dialAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := tcp.IP
	switch {
	case ip == nil || ip.Equal(net.IPv4zero):
		ip = net.IPv4(127, 0, 0, 1)
	case ip.Equal(net.IPv6unspecified):
		ip = net.IPv6loopback
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(tcp.Port))
}

func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return b
}
