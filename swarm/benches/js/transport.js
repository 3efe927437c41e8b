// JS anchor for swarm/benches/transport.rs: one-way throughput of a hypercore-protocol@8
// stream (Noise XX + XSalsa20) between two in-process peers, 64 KiB stream-extension messages.
// Prints {"bytes": N, "seconds": S}. Run with NODE_PATH=<repo>/tests/js/node_modules.
'use strict'
const Protocol = require('hypercore-protocol')

const TOTAL = Number(process.argv[2] || 64 * 1024 * 1024)
const CHUNK = Buffer.alloc(64 * 1024, 7)
const a = new Protocol(true)
const b = new Protocol(false)
a.pipe(b).pipe(a)

let received = 0
let start = 0
b.registerExtension('bench', {
  encoding: 'binary',
  onmessage (m) {
    received += m.length
    if (received >= TOTAL) {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9
      process.stdout.write(JSON.stringify({ bytes: received, seconds }) + '\n')
      process.exit(0)
    }
  }
})
const ext = a.registerExtension('bench', { encoding: 'binary' })
a.on('handshake', () => {
  start = process.hrtime.bigint()
  let sent = 0
  const pump = () => {
    for (let i = 0; i < 16 && sent < TOTAL; i++) {
      ext.send(CHUNK)
      sent += CHUNK.length
    }
    if (sent < TOTAL) setImmediate(pump)
  }
  pump()
})
