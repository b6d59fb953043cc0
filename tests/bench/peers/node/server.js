// tocsin — SPDX-License-Identifier: MIT
//
// The Node.js peer of the fan-out benchmark (tests/bench/peers.py): a minimal
// `ws` broadcast server. WebSocket sessions connect to any path; every body
// POSTed to /pub is sent as one text message to every open session. No
// subprotocol, no filter, no history, no auth: the least a broadcaster can do,
// so the comparison with tocsind measures the cost of the fan-out itself.
//
//   node server.js --port 8081 [--host 127.0.0.1]
//
// GET /stats answers {"clients":N,"published":K,"sent":S}. SIGTERM or SIGINT
// closes the listener and exits.

'use strict';

const http = require('http');
const { WebSocketServer } = require('ws');

// A published body over this size is refused with 413: peers.py sends about
// 600 bytes, tocsind's own cap on an event is 64 KiB.
const MAX_BODY = 64 * 1024;

function parseArgs(argv) {
  const o = { port: 0, host: '127.0.0.1' };
  for (let i = 2; i < argv.length; i += 2) {
    if (argv[i] === '--port') {
      o.port = parseInt(argv[i + 1], 10);
    } else if (argv[i] === '--host') {
      o.host = argv[i + 1];
    } else {
      throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (!(o.port > 0 && o.port < 65536)) {
    throw new Error('--port PORT is required');
  }
  return o;
}

const opts = parseArgs(process.argv);
let published = 0;
let sent = 0;

// perMessageDeflate is off, as in tocsind (and ws's server default): a
// compressed broadcast would cost one deflate per session.
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });

function broadcast(body) {
  published++;
  // One Buffer for all sessions; binary: false makes each a text frame.
  for (const ws of wss.clients) {
    if (ws.readyState === ws.OPEN) {
      ws.send(body, { binary: false });
      sent++;
    }
  }
}

function onPublish(req, res) {
  const chunks = [];
  let size = 0;
  let refused = false;

  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY && !refused) {
      refused = true;
      res.writeHead(413, { 'Content-Type': 'text/plain' });
      res.end('body too large\n');
      req.destroy();
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', () => {
    if (refused) {
      return;
    }
    const body = Buffer.concat(chunks);
    // Answer first, so the publisher hears back before the fan-out loop
    // runs; its next request is read only after the loop (one thread).
    const n = wss.clients.size;
    res.writeHead(202, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ clients: n }) + '\n');
    broadcast(body);
  });
}

const server = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/pub') {
    onPublish(req, res);
  } else if (req.method === 'GET' && req.url === '/stats') {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ clients: wss.clients.size, published, sent }) + '\n');
  } else {
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not found\n');
  }
});

server.on('upgrade', (req, socket, head) => {
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.on('error', () => ws.terminate());
  });
});

function shutdown() {
  for (const ws of wss.clients) {
    ws.terminate();
  }
  server.close(() => process.exit(0));
  // Keep-alive publishers may hold the server open: do not wait for them.
  setTimeout(() => process.exit(0), 1000).unref();
}

process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

server.listen({ port: opts.port, host: opts.host, backlog: 4096 }, () => {
  console.log(`listening ${opts.host}:${opts.port}`);
});
