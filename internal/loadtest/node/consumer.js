// A plain Node consumer of Twilio Media Streams, the comparison point of the
// voicegate load harness (package loadtest): what an integrator writes with
// the ws package: JSON.parse each message, base64-decode the payload, decode
// μ-law with a table. Install ws (pinned in package.json) with `npm ci` in
// this directory; `go run ./internal/loadtest/cmd/vgload -kind node` runs it.
//
// It speaks the harness's server protocol: it prints {"addr":"HOST:PORT"},
// then answers "reset" and "report" lines on stdin with one JSON line each,
// and exits on "quit" or the end of stdin. The lag histogram uses the buckets
// of loadtest.Histogram.
'use strict';
const { WebSocketServer } = require('ws');
const readline = require('readline');

// G.711 μ-law to 16-bit linear PCM, as a table.
const ULAW = new Int16Array(256);
for (let i = 0; i < 256; i++) {
  const u = ~i & 0xff;
  const t = (((u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
  ULAW[i] = u & 0x80 ? 0x84 - t : t - 0x84;
}

// The consumer proper.
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
wss.on('connection', (ws) => {
  let t0us = 0;
  live++;
  ws.on('message', (data) => {
    const msg = JSON.parse(data);
    switch (msg.event) {
      case 'start':
        t0us = Number(msg.start.customParameters.t0us);
        break;
      case 'media': {
        const ulaw = Buffer.from(msg.media.payload, 'base64');
        const pcm = new Int16Array(ulaw.length);
        for (let i = 0; i < ulaw.length; i++) pcm[i] = ULAW[ulaw[i]];
        observe(t0us, Number(msg.media.timestamp));
        break;
      }
      case 'stop':
        ws.close();
        break;
    }
  });
  ws.on('error', (err) => { errors++; lastError = String(err); });
  ws.on('close', () => { live--; ended++; });
});

// Measurement: the harness's bucket scheme (loadtest.BucketOf), in µs.
const NUM_BUCKETS = 100 + 990 + 990 + 120 + 1;
let lag = new Float64Array(NUM_BUCKETS);
let live = 0, ended = 0, errors = 0, lastError = '';
function bucketOf(us) {
  if (us < 0) return 0;
  if (us < 1000) return Math.floor(us / 10);
  if (us < 100000) return 100 + Math.floor((us - 1000) / 100);
  if (us < 10000000) return 1090 + Math.floor((us - 100000) / 10000);
  if (us < 130000000) return 2080 + Math.floor((us - 10000000) / 1000000);
  return NUM_BUCKETS - 1;
}
function observe(t0us, timestampMs) {
  const now = (performance.timeOrigin + performance.now()) * 1000;
  lag[bucketOf(Math.floor(now - t0us - timestampMs * 1000))]++;
}

wss.on('listening', () => {
  const a = wss.address();
  process.stdout.write(JSON.stringify({ addr: `${a.address}:${a.port}` }) + '\n');
});
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  switch (line.trim()) {
    case 'reset':
      lag = new Float64Array(NUM_BUCKETS);
      process.stdout.write('{"ok":true}\n');
      break;
    case 'report': {
      const sparse = [];
      lag.forEach((c, i) => { if (c) sparse.push([i, c]); });
      process.stdout.write(JSON.stringify({
        kind: 'node', streams: live, ended, errors, last_error: lastError,
        lag: sparse, dropped: 0, late: 0, max_queue: 0,
      }) + '\n');
      break;
    }
    case 'quit':
      process.exit(0);
  }
});
rl.on('close', () => process.exit(0));
