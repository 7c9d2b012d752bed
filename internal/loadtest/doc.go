// Package loadtest measures stream servers under many real-time Twilio
// Media Streams or Genesys AudioHook sessions over loopback: the server's
// CPU per stream-second, its memory per stream, the delay from a frame's
// send time to ReadFrame, dropped and late frames, and AudioHook pong
// latency. Command vgload (cmd/vgload) runs it; BenchmarkLoadTwilio,
// BenchmarkLoadAudioHook, BenchmarkLoadFloor and BenchmarkLoadNode run a
// small load (-loadtest.n, default 50 streams, -loadtest.duration, default
// 3 s) and report the figures with b.ReportMetric. Plain go test runs only
// the harness's unit tests and a short end-to-end run.
//
// # Servers
//
// Run starts the server as a child process so that its CPU time stands
// alone: the current executable re-run with ServeEnv set (main and TestMain
// call MaybeServe first), or node for the Node consumer. Kinds:
//
//   - floor: upgrades (RFC 6455 handshake) and reads and discards bytes in a
//     goroutine per connection: the least a goroutine-per-connection Go
//     server pays per message (a read system call and a wake-up).
//   - twilio: twilio.Accept and a goroutine per stream calling ReadFrame
//     until io.EOF.
//   - audiohook: audiohook.Accept, with the generator's signatures checked
//     (APIKey, Secret), and the same ReadFrame loop.
//   - node: node/consumer.js, a plain ws consumer of Twilio streams
//     (JSON.parse, base64 decode, μ-law table decode). Install its pinned ws
//     with `npm ci` in node/ (Run does this when node_modules is missing);
//     Run returns ErrNoNode, and the benchmark skips, without node and npm.
//
// A server takes commands on stdin and answers JSON lines on stdout (see
// Serve): Run resets its lag histogram when the measured window starts and
// asks for its report when it ends.
//
// # Generator
//
// The generator runs in the calling process. It dials each stream with its
// own handshake (AudioHook upgrades signed with audiohook.SignRequest),
// then sends frames masked with a fixed key (RFC 6455 §5.3) so that they
// are masked once: AudioHook's binary frame is one shared byte slice, and a
// Twilio media message keeps its streamSid and payload masked in a
// per-stream buffer with only chunk, timestamp and sequenceNumber written
// and masked per message. Stream starts are spread evenly over the 20 ms
// (Twilio) or 200 ms (AudioHook) period and over Config.Ramp;
// Config.Senders goroutines (GOMAXPROCS by default), not one per stream,
// each wake once a millisecond and write the frames that are due, each
// media message as its own WebSocket message at its media time. A write
// is one non-blocking write(2) on the socket through syscall.RawConn, made
// as a raw system call (it never blocks, so it never parks in the netpoller
// nor hands its P to another thread); what the socket does not take waits
// in a per-stream backlog. A media write allocates nothing. The sockets
// keep Go's TCP_NODELAY, so each message leaves as its own TCP segment
// when written.
//
// Two options change what the server sees and are off by default, not
// being what Twilio does: Config.Coalesce (vgload -coalesce K) writes K
// consecutive media messages of a stream with one write(2) when the last
// is due, and Config.Nagle (vgload -nagle) turns TCP_NODELAY off. Runs
// with either are marked "not real time" in Result.String and Table.
//
// A stream's start wall time travels in its start message (Twilio
// customParameters, AudioHook inputVariables, key "t0us", Unix µs); the
// server's lag is now − (start + Frame.Timestamp) at ReadFrame, so it
// includes any delay of the generator itself, its send delay (write time
// − media time), reported separately as Result.GenLateP50Ms and
// GenLateP99Ms.
//
// # Which side fell behind
//
// Result.Behind (and the last column of vgload's lines and -table) says
// whether the run kept its lag p99 within Config.LagBudget (150 ms) with
// nothing dropped and, when it did not, whether the generator (its own
// send delay p99 over a third of the budget and of the lag, or under 95%
// of the due media sent) or the server (its share of the lag over two thirds of the
// budget, frames dropped, or a socket left full) fell behind: see Behind.
// The floor server reads without parsing, so its share is the bytes
// written but not yet read at the end of the window, in ms of sending
// (Result.ServerBacklogMs).
//
// # Figures
//
// CPU is utime+stime of /proc/<pid>/stat (10 ms ticks) over the measured
// window, divided by streams × seconds; the generator's is this process's
// over the same window. RSS is VmRSS at the end of the window. Lag
// quantiles are the upper bounds of Histogram buckets. Dropped, late and
// the queue depth come from the streams' Stats. On a shared machine, run
// the variants in the same session and repeat them; pin the server and the
// generator to separate CPUs (vgload -cpus 0/1) to keep them from competing.
//
// # Profiling
//
// vgload -cpuprofile F (Config.CPUProfile) has a Go server write a pprof
// CPU profile of the measured window; read it with go tool pprof and the
// vgload binary. At 1,000 streams the server's time goes mostly to the
// kernel and the scheduler, not to voicegate's own code. Twilio (60 ms
// read cadence): read(2) 31% (one per stream per pause, including the
// loopback ACK it sends), the runtime's epoll_wait 19% (an event per 20 ms
// segment on sockets whose reader was paused; 1.2% once wsconn raised
// SO_RCVLOWAT for the pause), the pause itself 11%, the queue's copies and
// locks 9%, JSON and base64 8%, time.Now 2%. AudioHook (no cadence, so
// that pongs stay prompt): read(2) 32% (two per 200 ms message: the
// message, then EAGAIN before the reader parks), waking idle threads for
// readied goroutines (futex) 16%, epoll_wait 11%, the hand-off to the
// consumer about 10%, the queue's copy 6%, the idle timer 1%.
//
// # Measured
//
// On a shared 2-core VM with other jobs running (load average 4–22), 1,000
// Twilio streams, 20 s windows (go run ./internal/loadtest/cmd/vgload -kind K
// -n 1000 -duration 20s, and -cpus 0/1 for the pinned runs), server CPU per
// stream-second: floor 232–321 µs (pinned 448–628), twilio 264–369 µs
// (pinned 220–303), Node consumer 518–833 µs in the same sessions (earlier
// 214–365, pinned 332–771, falling behind by seconds whenever its one
// thread was starved); AudioHook, 1,000 stereo PCMU sessions: 206–280 µs
// per session-second, pong p99 9.6–410 ms. RSS per stream: floor 26–38 KB,
// twilio 127 KB, Node 95–160 KB, AudioHook 144 KB. The README's "Load and
// latency" section has the table.
//
// # The knee, generator included
//
// A real-time Twilio generator writes each 20 ms media message with its
// own write(2): 250,000 a second at 5,000 streams. On loopback that write
// also runs the receiving side of TCP. What a message costs each side
// depends on how many messages the other side handles per wake-up, so it
// falls as the load rises (vgload -kind floor,twilio -n 1000,2000,3000,5000
// -duration 8s, CPU time over messages sent or frames read):
//
//   - near real time, 1,000 streams (send delay p50 under 0.1 s):
//     generator 6.4–9.1 µs per message (the writing thread alone
//     4.8–5.9 µs, BenchmarkMediaWrite), twilio server 3.4–5.5 µs per
//     frame (60 ms read cadence), floor 3.2–8.3 µs;
//   - seconds behind, 5,000 streams: generator 1.3–4.0 µs, twilio server
//     1.5–3.2 µs, floor 0.7–1.4 µs.
//
// At 250,000 messages a second the first costs would need 2.5–3.7 cores
// for generator and twilio server together, the second 0.7–1.8: 5,000
// streams on 2 cores with the generator on them is feasible only if both
// sides come near the batched costs while the lag p99 stays within
// 150 ms, which no run showed. In four sessions of the series other jobs
// took 0.3–1.8 of the 2 cores (Result.OthersCores). The twilio server
// kept 1,000 streams within the budget only in the session where they
// left CPU idle (lag p99 64 ms, send delay p99 3 ms,
// generator and twilio server 0.71 cores together, 14 µs per message:
// five times that is 3.6 cores). With the most CPU any run got, 1.33
// cores for generator and floor server at 5,000 streams (other jobs
// 0.67), the generator still fell behind (send delay p99 1.4 s at 4.0 µs
// per message). In every run from 2,000 streams up the generator fell
// behind first (send delay p99 0.8–3.4 s at 2,000).
//
// Where the generator's time goes (perf record -g -p PID on vgload -kind
// floor -n 1000, 548 µs per stream-second): write(2) 87% of its CPU,
// tcp_sendmsg 73%, and within it the receiving socket's side of TCP
// (tcp_v4_rcv, run by loopback in the writer's system call) 25%; the
// system call's entry and exit are 6%. Batching the writes through
// io_uring would save at most those 6%: each message stays its own TCP
// segment, and the segment is what costs. So with one segment per 20 ms
// message, 5,000 streams on these 2 cores are out of reach: the writing
// thread alone needs 4.8–5.9 µs per message (BenchmarkMediaWrite), 1.2–1.5
// cores at 250,000 messages a second, and the twilio server 5.6–7.3 µs per
// frame near real time (3.1–3.6 µs only once seconds behind), together
// 2.6–3.3 cores. A repeat of the series on 29 November (vgload -kind
// floor,twilio -n 1000,2000,3000,5000 -duration 8s -table, load average
// 7.9–8.9, other jobs 0.5–1.4 cores, the 8-bytes-at-a-time scanner in):
// floor server 270, 177, 128, 54 µs per stream-second, its generator 440,
// 428, 378, 186; twilio server 366, 158, 132, 60, its generator 470, 235,
// 154, 63; the generator fell behind first at every step (send delay p99
// 0.25–1.9 s), and at 3,000 and 5,000 streams the twilio server too
// (192,137 and 627,416 frames dropped).
//
// Coalescing three messages per write (vgload -coalesce 3, not what
// Twilio does) costs the generator 2.2 µs per message in
// BenchmarkMediaWrite; turning TCP_NODELAY off (-nagle, also not real
// time) gave 252 and 220 µs per stream-second at 1,000 streams against
// 282 and 341 minutes before, and the twilio server 291 against 220: the
// held segments go out on the server's ACKs, in its CPU time.
package loadtest
