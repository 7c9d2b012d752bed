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
// with 1009 before any of its payload is buffered. ReadMessage then returns
// a *ProtocolError carrying the status sent.
//
// A read is cancelled by CloseNow or Close from another goroutine, or by
// SetReadDeadline; either ends the connection. ReadMessage takes no
// context, because watching one would cost allocations on every message.
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
