// Writes fixtures/vectors/bitfield-rle.json: bitfields and their JS bitfield-rle (align 4)
// encodings, as hypercore@9's replicate.js uses them. Deterministic (seeded mulberry32).
// Run: NODE_PATH=tests/js/node_modules node hypercore/tests/js/gen_rle_vectors.js > fixtures/vectors/bitfield-rle.json
'use strict'
const rle = require('bitfield-rle').align(4)

let seed = 0x1a2b3c4d
function rand () { // mulberry32
  seed |= 0; seed = seed + 0x6D2B79F5 | 0
  let t = Math.imul(seed ^ seed >>> 15, 1 | seed)
  t = t + Math.imul(t ^ t >>> 7, 61 | t) ^ t
  return ((t ^ t >>> 14) >>> 0) / 4294967296
}

const cases = []
for (let c = 0; c < 300; c++) {
  const parts = []
  const runs = 1 + Math.floor(rand() * 8)
  for (let r = 0; r < runs; r++) {
    const len = Math.floor(rand() * (rand() < 0.2 ? 400 : 12))
    const kind = rand()
    const b = Buffer.alloc(len)
    if (kind < 0.35) b.fill(0)
    else if (kind < 0.7) b.fill(255)
    else for (let i = 0; i < len; i++) b[i] = rand() < 0.3 ? (rand() < 0.5 ? 0 : 255) : Math.floor(rand() * 256)
    parts.push(b)
  }
  const bitfield = Buffer.concat(parts)
  const encoded = rle.encode(bitfield)
  cases.push({ bitfield: bitfield.toString('hex'), rle: encoded.toString('hex'), decoded: rle.decode(encoded).toString('hex') })
}
process.stdout.write(JSON.stringify({ generator: 'hypercore/tests/js/gen_rle_vectors.js', package: 'bitfield-rle (align 4)', cases }, null, 1) + '\n')
