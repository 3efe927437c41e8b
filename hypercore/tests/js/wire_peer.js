// Reference JS peer for hypercore/tests/wire_js_interop.rs: real hypercore@9 +
// hypercore-protocol@8 over TCP on 127.0.0.1. Run with NODE_PATH=<repo>/tests/js/node_modules.
//
//   node wire_peer.js serve            a writer feed with 3 blocks, listening; prints
//                                      {port, key, noiseKey} on one line, serves until stdin ends
//   node wire_peer.js dial PORT KEY N  a sparse replica of KEY dials PORT, get()s blocks 0..N-1
//                                      (JS verifies each proof), prints {blocks, noiseKey}, exits
'use strict'
const net = require('net')
const hypercore = require('hypercore')
const RAM = require('random-access-memory')
const Protocol = require('hypercore-protocol')

const noiseKeyPair = Protocol.keyPair(Buffer.alloc(32, 7))
const [mode, ...args] = process.argv.slice(2)

function fail (err) {
  process.stderr.write(String(err && err.stack || err) + '\n')
  process.exit(1)
}
setTimeout(() => fail(new Error('wire_peer.js: timed out')), 20000).unref()
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()

if (mode === 'serve') {
  const feed = hypercore(() => new RAM(), { noiseKeyPair })
  feed.append([Buffer.from('block 0'), Buffer.from('block 1'), Buffer.from('block 2')], (err) => {
    if (err) return fail(err)
    const server = net.createServer((socket) => {
      const stream = feed.replicate(false, { live: true })
      socket.on('error', () => {})
      stream.on('error', (err) => process.stderr.write('js stream: ' + err.message + '\n'))
      socket.pipe(stream).pipe(socket)
    })
    server.listen(0, '127.0.0.1', () => {
      process.stdout.write(JSON.stringify({
        port: server.address().port,
        key: feed.key.toString('hex'),
        noiseKey: noiseKeyPair.publicKey.toString('hex')
      }) + '\n')
    })
  })
} else if (mode === 'dial') {
  const [port, keyHex, n] = args
  const feed = hypercore(() => new RAM(), Buffer.from(keyHex, 'hex'), { sparse: true, noiseKeyPair })
  feed.ready((err) => {
    if (err) return fail(err)
    const socket = net.connect(Number(port), '127.0.0.1')
    const stream = feed.replicate(true, { live: true })
    stream.on('error', fail)
    socket.on('error', fail)
    socket.pipe(stream).pipe(socket)
    const blocks = []
    const next = (i) => {
      if (i >= Number(n)) {
        process.stdout.write(JSON.stringify({ blocks, noiseKey: noiseKeyPair.publicKey.toString('hex') }) + '\n')
        return setImmediate(() => process.exit(0))
      }
      feed.get(i, (err, data) => {
        if (err) return fail(err)
        blocks.push(data.toString())
        next(i + 1)
      })
    }
    next(0)
  })
} else {
  fail(new Error('usage: wire_peer.js serve | dial PORT KEY N'))
}
