'use strict'
// Applies runs of operations with JS hypertrie 5.1.3 (in memory) and prints, per run, every block
// of the feed (hex) and what get/list return, as one JSON line. Used by ../js_interop.rs.
// Usage: node replay.js RUNS.json
const fs = require('fs')
const hypertrie = require('hypertrie')
const RAM = require('random-access-memory')

const p = (fn) => new Promise((resolve, reject) => fn((err, val) => err ? reject(err) : resolve(val)))

async function run (ops, keys) {
  const db = hypertrie(() => new RAM())
  await p(cb => db.ready(cb))
  const lengths = []
  for (const op of ops) {
    if (op.op === 'put') {
      await p(cb => db.put(op.key, Buffer.from(op.value, 'hex'), { hidden: op.hidden, flags: op.flags }, cb))
    } else if (op.op === 'del') {
      await p(cb => db.del(op.key, { hidden: op.hidden }, cb))
    } else {
      const batch = op.ops.map(o => o.type === 'put'
        ? { type: 'put', key: o.key, value: Buffer.from(o.value, 'hex'), hidden: o.hidden, flags: o.flags }
        : { type: 'del', key: o.key, hidden: o.hidden })
      await p(cb => db.batch(batch, cb))
    }
    lengths.push(db.feed.length)
  }
  const blocks = []
  for (let i = 0; i < db.feed.length; i++) blocks.push((await p(cb => db.feed.get(i, cb))).toString('hex'))
  const gets = []
  for (const key of keys) {
    for (const hidden of [false, true]) {
      const node = await p(cb => db.get(key, { hidden }, cb))
      gets.push(node ? node.seq : null)
    }
  }
  const list = await safeList(db, {})
  const hidden = await safeList(db, { hidden: true })
  const shallow = await safeList(db, { recursive: false })
  return { lengths, blocks, gets, list, hidden, shallow }
}

// JS's iterator throws (asynchronously) when it reaches a reset node, which a batch can point at
// (its running head may be a reset node). Report that as null instead of dying.
function safeList (db, opts) {
  return new Promise((resolve) => {
    const onError = () => { process.removeListener('uncaughtException', onError); resolve(null) }
    process.on('uncaughtException', onError)
    db.list('', opts, (err, nodes) => {
      process.removeListener('uncaughtException', onError)
      resolve(err ? null : nodes.map(n => [n.key, n.seq]))
    })
  })
}

async function main () {
  const runs = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
  for (const r of runs) process.stdout.write(JSON.stringify(await run(r.ops, r.keys)) + '\n')
}

main().catch(err => { console.error(err); process.exit(1) })
