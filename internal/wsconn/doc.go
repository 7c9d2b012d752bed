// Package wsconn is a server-side RFC 6455 WebSocket connection whose read
// path allocates nothing in steady state.
//
// It exists for media servers that receive many small binary frames per
// second per connection (20 ms audio frames), where a general-purpose
// WebSocket library's per-message allocations dominate the garbage
// produced. It implements exactly what such a server needs: the handshake,
// unfragmented writes, reading of (fragmented) messages, control frames and
// the close handshake. It never negotiates extensions (permessage-deflate is
// refused by omission), and it has no client side.
//
// # Handshake
//
// Accept validates the upgrade request (GET, HTTP/1.1, Connection and
// Upgrade tokens, Sec-WebSocket-Version 13, a 16-byte Sec-WebSocket-Key,
// Origin), answers invalid requests with an HTTP error before hijacking, and
// writes the 101 response itself. Bytes the client sent after its request
// and that net/http already buffered are kept.
//
// # Reading
//
// ReadMessage returns one whole message in a buffer owned by the
// connection, valid until the next call. It reassembles continuation
// frames, handles control frames interleaved with fragments, answers pings
// with pongs and ignores pongs. The peer is held to RFC 6455: a frame that is
// not masked, has reserved bits or a reserved opcode, a control frame that
// is fragmented or longer than 125 bytes, a continuation without a message
// or a new message inside a fragmented one, a 64-bit length with its most
// significant bit set, or an invalid close payload fails the connection with
// close status 1002; a text message or close reason that is not UTF-8 fails
// it with 1007; a message longer than the read limit (SetReadLimit) fails it
// with 1009 before any of its payload is buffered (SetTooBig lets the
// application tell the peer why in its own protocol first). ReadMessage
// then returns a *ProtocolError carrying the status sent.
//
// A read is cancelled by CloseNow or Close from another goroutine, or by
// SetReadDeadline; either ends the connection. ReadMessage takes no
// context, because watching one would cost allocations on every message.
//
// # Read cadence
//
// A live audio peer sends a small message every 20 ms (Twilio Media
// Streams) or 200 ms (AudioHook). Read one at a time, each costs a wake-up
// of the reading goroutine by the network poller, a read(2) that returns
// it, a read(2) that returns EAGAIN before the goroutine parks again, and a
// wake-up of whoever consumes it; parsing is a small part. SetReadCadence
// trades latency for those costs: once the buffered messages are handled,
// ReadMessage pauses for the cadence before it reads the network again, so
// that one read(2) takes every message that arrived meanwhile, and
// SetFlush lets the caller wake its consumer once per batch (the stream
// core's Batched queue). The pause ends on the next multiple of the
// cadence in Unix time, the same instant for every connection, timed by
// one timer per cadence that wakes every connection waiting for that
// instant, so the runtime's threads sleep in between. Close, CloseNow,
// SetReadDeadline and SetReadCadence(0) end a pause.
//
// A paused reader does not wait on the runtime's poller, but the poller
// still gets an event for each segment that arrives (its sockets are
// edge-triggered): at 1,000 Twilio streams its epoll_wait took 19% of the
// server's CPU. On Linux TCP connections the pause therefore raises the
// socket's SO_RCVLOWAT above what arrives in a pause, which stops those
// events (tcp_data_ready signals only above the mark); the read after the
// pause is non-blocking and returns whatever is queued, and a read that
// finds nothing lowers the mark to 1 before it waits (setting the mark
// signals at once if data is queued, so no wake-up is lost). epoll_wait
// then took 1.2%, and the server 20–50% less CPU per stream-second (see
// quiet_linux.go for the runs).
//
// Measured on a shared 2-core machine (twilio package; figures vary with
// the load of the machine):
//
//   - BenchmarkServerReadMediaBatch, CPU time per Twilio media message
//     from the socket to ReadFrame, k messages arriving per wake-up: k=1
//     (a stream read without a cadence) 28.5–32.8 µs, k=3 (a 60 ms
//     cadence) 13.0–15.1 µs, k=4 (80 ms) 12.0–12.5 µs.
//   - BenchmarkRealtimeStreams, real-time Twilio streams from a generator
//     in another process, same runs, machine load average about 7: at 500
//     streams, read(2) calls per media message 1.87–2.02 without a cadence
//     against 0.32–0.34 with 60 ms, server CPU 1,018–1,219 against 555–590
//     µs per stream-second, delivery lag p50 1–2 ms against 34–35 ms and
//     p99 30–78 ms against 95–225 ms (three runs each); at 1,000 streams
//     649 against 284 µs per stream-second (the floor, reading and
//     discarding the messages without a cadence: 474). When the machine is
//     saturated (load average 20 on 2 cores) the server reads several
//     messages per read(2) on its own and the difference fades: the gain
//     is where the server keeps up, which is the case it is for.
//   - Pauses ending on a shared grid against pauses of the full cadence
//     from when each connection drained: 4.3–5.3 against 6.3–6.4 context
//     switches per stream-second at 500 streams, CPU not told apart.
//
// Alternatives: a larger bufio buffer alone changes nothing at real-time
// pace (a read returns what has arrived: one message), and with a 60 ms
// cadence the 4 KiB buffer of the handshake already holds a batch (about
// 900 bytes of Twilio messages per track; reads per message matched the
// cadence, so the buffer never cut a batch). Skipping the read(2) that
// finds nothing by waiting for readiness first through the runtime's
// syscall.RawConn can lose a wake-up: RawConn.Read clears the poller's
// readiness before its first call, so data that arrived since the last
// read would go unnoticed until more arrives; the shared poller below does
// it safely.
//
// # Shared poller
//
// AcceptOptions.PollInterval moves a Linux TCP connection out of the
// runtime's network poller (the descriptor is duplicated and the
// *net.TCPConn closed, which takes the socket out of the runtime's epoll
// set) into the edge-triggered epoll set of one of GOMAXPROCS pollers. A
// poller is a goroutine that looks at its set every PollInterval with a
// non-blocking epoll_wait and drops a token in the channel of each ready
// connection, readying all their readers in one pass; after eight empty
// looks it blocks in epoll_wait (100 ms at most) until something arrives,
// and it exits with its last connection. Reads and writes are non-blocking
// read(2) and write(2) on the descriptor; a read that returned less than
// asked for emptied the socket, so the next one waits for a token instead
// of spending a read(2) on EAGAIN. Every arrival after a read queues an
// event, so no wake-up is lost; a token left by data that a read already
// took costs one read that finds nothing. A write that finds the send
// buffer full waits for a token too. Deadlines are checked before each
// call and bound the waits (one timer per side, made on first use), so
// reads stay free of allocations. The read cadence and its raised
// SO_RCVLOWAT work the same on a polled connection. Pings are answered by
// the reader as before, at most PollInterval later.
//
// AudioHook (5 binary messages of 200 ms per second, pings every 5 s) has
// no read cadence, so before the poller each message cost a wake-up of an
// idle thread by the runtime's poller, a read(2) for the data and one that
// found nothing. 1,000 stereo PCMU sessions (go run
// ./internal/loadtest/cmd/vgload -kind audiohook -n 1000 -duration 12s),
// the two builds alternating in one session on the shared 2-core machine
// (load average 5–26): server CPU per session-second 143, 142, 114, 145,
// 148, 120, 69, 167 µs before, 101, 94, 85, 111, 95, 91, 75, 100 µs with a
// 2 ms interval (the one run under 80 before had the generator 0.9 s
// late, which batches messages). Intervals of 1, 5 and 10 ms cost the same
// (87 and 81; 91–96; 92–94 µs): what is left is per message, so audiohook
// uses 1 ms, which keeps pongs prompt: BenchmarkPollPingPong (an idle
// connection, pings at random phases) gives a round trip p99 of 97 µs
// through the runtime's poller, 1.4 ms with 1 ms and 3.5 ms with 2 ms. At
// 1,000 sessions the generator's pong p99 follows its own lateness on
// this machine (1–680 ms either way). In two profiles of a 2 ms run
// (vgload -cpuprofile, 81–85 of the 97–98 µs per session-second sampled),
// the read(2) that takes the data costs 21–34 µs per session-second (4–7
// µs per read, much of it the loopback ACK the read sends), parking and
// scheduling goroutines 11, the copies 9, the consumer's queue 7, the
// poller itself 4. One poller in
// all against one per GOMAXPROCS: 95–106 against 96 µs, not told apart.
//
// A Twilio stream reads on its cadence with the mark raised, so the poller
// sees none of its segments in steady state; at 1,000 streams (vgload
// -kind twilio -n 1000 -duration 12s, same sessions) the server took
// 127–297 µs per stream-second with the poller and 151–264 without, apart
// by less than the machine's noise (the generator itself was 0.2–2 s late
// at p99 in most runs, and a late generator makes every read take more
// messages). Its profile (60 ms cadence, 246 µs per stream-second): the
// read(2) 71 µs (4.2 µs per read, 16.7 reads per second), parsing the
// JSON and base64 40, the pause and the shared timer's wake-ups 25, the
// consumer's Pop 16. Longer cadences, the default changed in the build
// (vgload -kind twilio -n 200 -duration 6s -ramp 2s -warmup 1s): 60 ms
// 267 µs with lag p50 32 ms and p99 82 ms, 100 ms 208 µs with p50 52 ms
// and p99 120 ms; at 1,000 streams 60, 80 and 100 ms took 226, 228 and
// 217 µs (lag p99 720, 170 and 120 ms, the generator 710, 160 and 18 ms
// late). A 100 ms cadence saves about a fifth but holds every frame near
// the 100 ms lag budget the streams warn at, so the default stayed 60 ms,
// until the cadence timer that parses (below) made the runs tell 80 ms
// apart: twilio.DefaultReadCadence is now 80 ms (its doc has the runs).
//
// A poller that also parses (Conn.SetFastPath, which audiohook uses): a
// reader that finds nothing buffered and the socket empty parks, and
// while it sleeps the poller's goroutine reads the socket itself (the same
// one non-blocking read(2) per message) and hands every complete binary
// message to the fast path, which queues the audio; only other messages
// (text, pings, close, a fragment, a partial frame) wake the reader, which
// then reads them as before, so pings are answered as promptly and
// ReadMessage keeps its contract. The payload is unmasked in place in the
// read buffer, so the fast path also saves a copy. It saves the reader's
// wake-up and park per message (a channel token, the scheduler, a select).
// The polled socket's read(2) and the poller's non-blocking epoll_pwait(2)
// also skip the runtime's system call entry (see rawRead in
// poll_linux.go): sysmon otherwise wakes every 20 µs while it sees Ps in
// system calls. 1,000 stereo PCMU sessions (go build -o /tmp/vgload
// ./internal/loadtest/cmd/vgload && /tmp/vgload -kind audiohook -n 1000
// -duration 12s), builds alternating on the shared 2-core machine, server
// CPU per session-second, runs where both sides kept up:
//
//   - load average 4.4–8.7, other jobs using 1.2–1.7 cores: 179, 160, 170,
//     169 µs before, 154, 152, 150, 176 µs with the fast path;
//   - load average 4.0–6.5, other jobs 1.2–1.8 cores: fast path 148, 174,
//     172 µs; with the raw calls too 144, 139, 98 µs; one poller in all
//     instead of one per GOMAXPROCS (fast path, no raw calls) 176, 173, 135
//     µs, not told apart, so the pollers stay one per GOMAXPROCS;
//   - the final build against the one before the fast path, load average
//     15–19, other jobs 1.7–1.8 cores: 146, 146, 183 µs before, 107, 113
//     µs after (the other four of ten runs fell behind); load average
//     6.3–9.0, other jobs 0.5–1.7 cores, all six runs kept up: 206, 191,
//     183 µs before, 155, 147, 135 µs after;
//   - when the machine was saturated (load average 11–18, other jobs
//     1.7–1.9 cores, the generator 0.1–1.6 s late at p99) every run fell
//     behind, which batches messages: 90–152 µs before, 51–109 after.
//
// Pong p99 at 1,000 sessions as the generator saw it, same runs: with the
// final build 4.0 and 4.1 ms in the two runs where the machine had
// 0.2–0.5 of a core idle (the second with -cpuprofile), 5.7–78 ms where it had none; the build before
// 4.3–47 ms (4.3 with a core idle). The ping waits at most the poll
// interval before the reader is woken, as before.
//
// The audio session's idle timeout no longer resets a timer per message
// either: it counts messages and looks every half timeout. What is left
// per message: the read(2) (about half of it the ACK below), the poller's
// pass, and the wake-up of the goroutine that calls ReadFrame. In a
// profile of the final build (vgload -cpuprofile, 138 µs per
// session-second sampled) the read(2) alone took 9.8 µs per message, 49
// µs per session-second: the 60 µs goal leaves about 10 µs for the rest,
// which this machine under load does not reach.
//
// Deferring the ACK that a read sends (TCP_QUICKACK set to 0) was not
// built: it would move that cost to the delayed-ACK timer rather than
// remove it (one ACK per 200 ms message either way), and Linux leaves that
// mode at the first delayed ACK. perf record of the server at 1,000
// sessions: the read(2) is 25–30% of the server's samples, over half of it
// the ACK it sends (tcp_cleanup_rbuf → __tcp_transmit_skb and the loopback
// delivery to the generator's socket; Linux 6.18 here).
//
// In a perf(1) profile of the twilio server at 1,000 streams (perf record
// -g -p PID on the server of vgload -kind twilio -n 1000), read(2) took
// 25% of its CPU: tcp_recvmsg 20%, of which sending the ACK 9%, and 7 of
// those 9 are the generator's socket receiving that ACK, which loopback
// runs in the reader's system call (over a network it costs the server
// nothing). Batching the reads through io_uring (one io_uring_enter for
// the reads of every connection due at a cadence instant) would save only
// the system call's entry and exit, 2.5% of the server's CPU in the same
// profile (syscall.read 25.5% against ksys_read 23.0%), while the TCP work
// stays per read; it was not built. The same profile had sysmon at 7.4%
// with syscall.Read in pollConn.Read and in the quiet read after a cadence
// pause (quietReader); with both raw (rawRead), 1.6%.
//
// # Cadence timer that parses
//
// Conn.SetCadenceFastPath, which twilio uses, takes the reader's wake-up
// out of a cadence pause. Before it, each pause of each connection cost a
// kick from the shared timer, a wake-up and a park of the reader
// goroutine, the registration for the next instant under the timer's
// lock and a flush; then the reader's read(2) and parse, and a wake-up of
// the ReadFrame caller. Now the reader lends its read side when it
// pauses, and at each instant the timer's goroutine (split among
// GOMAXPROCS goroutines above 64 connections, so that the reads of one
// instant use every core, as the readers did) makes the one non-blocking
// read(2) of each paused connection itself, with the SO_RCVLOWAT mark
// left raised, and hands the complete text and binary messages to the
// fast path: twilio queues the media there and flushes the batch to the
// ReadFrame caller, so a batch costs one wake-up, of the goroutine that
// wants the frames. A read that finds nothing leaves the connection
// paused until the next instant, without a second read(2). Anything else
// (start, stop, mark, DTMF, a control frame, a partial frame, text that
// is not UTF-8, the end of the stream) wakes the reader, which reads it
// as before, at most one cadence later as before; Close, CloseNow and
// a deadline already past wake it at once, a future deadline at the first
// instant after it, and it waits until the timer has handed the read side
// back.
//
// A CPU profile of the twilio server (vgload -kind twilio -cpuprofile F),
// before at 1,000 streams, after at 500 (the machine would not keep up
// with more): before, the reader's pause took 10% of the samples and the
// wake-ups on both sides (chanrecv, chansend, gopark, schedule) 21%;
// after, the scheduler and the channel operations 10%, the timer's pass
// 77% (read(2) 41 of it, the JSON and the queue 19), ReadFrame and the
// loadtest's consumer 18%. Server CPU per stream-second, the two builds
// alternating in one session (vgload -kind twilio -n 200 -duration 8s;
// other jobs took 1.5–1.8 of the 2 cores, so most runs had the generator
// behind): 451, 444, 475, 537 µs before, 394, 387, 331, 425 µs after.
//
// The timer's goroutines yield the processor every 64 connections
// (endPauses). Their read(2) calls are raw, so the runtime sees a
// goroutine that runs through its whole share of an instant (500
// connections at 1,000 streams, 10 ms or more on this machine) without
// being rescheduled; past 10 ms sysmon preempts it with a signal, which
// lands in the read(2), not a safe point, about half the time and is then
// sent again. In a profile at 1,000 streams runtime.asyncPreempt, where
// the kernel time of those signals is counted, took 10.5% of the server's
// samples, and 5.3% with the yields on the same loaded machine (other
// jobs 1.2 cores: a thread the kernel deschedules mid-share still
// overruns). The twilio fast path takes the stream's lock once per media
// message instead of twice (the count and the idle record, then the
// track's placement). Left as they were: the clock reading per frame in
// streamcore's Pop (the lag of each frame needs its own delivery time:
// reusing one reading for a batch would lower the running minimum the
// lag is measured from), and the read(2) per connection per instant,
// whose TCP work (the ACK each read sends, and on loopback the
// generator's receipt of it) does not batch.
//
// # Writing
//
// WriteMessage and WritePing write one final, unmasked frame under a write
// lock, so any number of goroutines may write. The context's deadline
// becomes the socket's write deadline; a cancellable context is watched
// with context.AfterFunc while the frame is written.
//
// # Closing
//
// When the peer sends a close frame, ReadMessage answers it with the same
// status code, closes the TCP connection and returns a *CloseError. Close
// sends a close frame, waits for the peer's (seen by a concurrent
// ReadMessage, or read by Close itself) up to AcceptOptions.CloseTimeout,
// then closes the TCP connection. CloseNow closes at once. After either,
// calls fail with errors wrapping net.ErrClosed.
package wsconn
