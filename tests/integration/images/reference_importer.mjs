// The JS reference importer (npm ipfs-unixfs-importer) on hcp's vectors.
// stdin: {"vectors": [{"name", "kind": "file"|"dir", "seed", "size", "entries": [{"path", "seed", "size"}],
//          "params": {"chunk_size", "max_links", "cid_version", "raw_leaves"}}]}
// stdout: {"<name>": "<root CID>"} — CIDv0 in base58btc, CIDv1 in base32.
import { createHash } from 'node:crypto'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'

const BLOCK = 4096

// The same bytes as hcp.images.patterns.pattern_stream.
async function * pattern (seed, size) {
  const per = 256
  let j = 0
  let left = size
  while (left > 0) {
    const buf = Buffer.allocUnsafe(per * BLOCK)
    for (let k = 0; k < per; k++) {
      const d = createHash('sha256').update(`${seed}:${j + k}`).digest()
      for (let r = 0; r < BLOCK / 32; r++) d.copy(buf, k * BLOCK + r * 32)
    }
    j += per
    const out = buf.subarray(0, Math.min(left, buf.length))
    left -= out.length
    yield out
  }
}

// Blocks are only counted: the CIDs are all this script reports, and a >1 GiB vector must not
// be held in memory.
const blockstore = { blocks: 0, async put (cid) { this.blocks++; return cid }, async get () { throw new Error('write-only') }, async has () { return false } }

function options (p) {
  return {
    cidVersion: p.cid_version,
    rawLeaves: p.raw_leaves,
    leafType: 'file',
    reduceSingleLeafToSelf: true,
    chunker: fixedSize({ chunkSize: p.chunk_size }),
    layout: balanced({ maxChildrenPerNode: p.max_links })
  }
}

const input = JSON.parse(await new Promise((resolve) => {
  let s = ''
  process.stdin.on('data', (d) => { s += d })
  process.stdin.on('end', () => resolve(s))
}))
const out = {}
for (const v of input.vectors) {
  const opts = options(v.params)
  if (v.kind === 'file') {
    let last
    for await (const entry of importer([{ content: pattern(v.seed, v.size) }], blockstore, opts)) last = entry
    out[v.name] = last.cid.toString()
  } else {
    const files = v.entries.map((e) => ({ path: `root/${e.path}`, content: pattern(e.seed, e.size) }))
    for await (const entry of importer(files, blockstore, opts)) {
      if (entry.path === 'root') out[v.name] = entry.cid.toString()
    }
  }
}
process.stdout.write(JSON.stringify(out))
