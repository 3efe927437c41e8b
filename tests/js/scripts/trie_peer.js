// Reference JS hypertrie@5 peer for tests/testsuite/interop/trie_peer.rs (wire spec §7–9): real hypertrie@5 +
// hypercore@9 + hypercore-protocol@8 over TCP on 127.0.0.1.
// Run with NODE_PATH=<repo>/tests/js/node_modules.
//
//   node trie_peer.js serve N          a writer trie with keys pkg/0..pkg/N-1 (value "value i"),
//                                      listening; prints {port, key}; serves until stdin ends
//   node trie_peer.js read PORT KEY    a sparse replica of trie KEY dials PORT, downloads the
//                                      whole feed (JS verifies every block), lists every key;
//                                      prints {length, entries: [[key, value], ...]} and exits
'use strict'
const net = require('net')
const hypertrie = require('hypertrie')
const RAM = require('random-access-memory')

const [mode, ...args] = process.argv.slice(2)

function fail (err) {
  process.stderr.write(String(err && err.stack || err) + '\n')
  process.exit(1)
}
setTimeout(() => fail(new Error('trie_peer.js: timed out')), 30000).unref()
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()

if (mode === 'serve') {
  const n = Number(args[0] || 10)
  const db = hypertrie(() => new RAM())
  const batch = []
  for (let i = 0; i < n; i++) batch.push({ type: 'put', key: 'pkg/' + i, value: Buffer.from('value ' + i) })
  db.batch(batch, (err) => {
    if (err) return fail(err)
    const server = net.createServer((socket) => {
      socket.setNoDelay(true)
      const stream = db.replicate(false, { live: true })
      socket.on('error', () => {})
      stream.on('error', (err) => process.stderr.write('js stream: ' + err.message + '\n'))
      socket.pipe(stream).pipe(socket)
    })
    server.listen(0, '127.0.0.1', () => {
      process.stdout.write(JSON.stringify({ port: server.address().port, key: db.key.toString('hex') }) + '\n')
    })
  })
} else if (mode === 'read') {
  const [port, keyHex] = args
  const db = hypertrie(() => new RAM(), Buffer.from(keyHex, 'hex'), { sparse: true })
  db.ready((err) => {
    if (err) return fail(err)
    const socket = net.connect(Number(port), '127.0.0.1')
    socket.setNoDelay(true)
    const stream = db.replicate(true, { live: true })
    stream.on('error', fail)
    socket.on('error', fail)
    socket.pipe(stream).pipe(socket)
    const feed = db.feed
    const done = () => {
      feed.download({ start: 0, end: feed.length }, (err) => {
        if (err) return fail(err)
        for (let i = 0; i < feed.length; i++) if (!feed.has(i)) return fail(new Error('block ' + i + ' missing'))
        db.list('', (err, nodes) => {
          if (err) return fail(err)
          const entries = nodes.map((n) => [n.key, n.value ? n.value.toString('hex') : null])
          process.stdout.write(JSON.stringify({ length: feed.length, entries }) + '\n')
          setImmediate(() => process.exit(0))
        })
      })
    }
    if (feed.length > 0) return done()
    feed.update({ ifAvailable: false }, (err) => (err ? fail(err) : done()))
  })
} else {
  fail(new Error('usage: trie_peer.js serve N | read PORT KEY'))
}
