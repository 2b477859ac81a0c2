// Drives hcp's node with the official Kubo RPC client (npm kubo-rpc-client).
// stdin: {"url", "token"}; stdout: what each verb answered, as JSON.
import { create } from 'kubo-rpc-client'

const input = JSON.parse(await new Promise((resolve) => {
  let s = ''
  process.stdin.on('data', (d) => { s += d })
  process.stdin.on('end', () => resolve(s))
}))
const ipfs = create({ url: input.url, headers: { authorization: `Bearer ${input.token}` } })
const enc = new TextEncoder()
const dec = new TextDecoder()
const big = new Uint8Array(700000).map((_, i) => (i * 7) & 0xff)

async function cat (cid, opts = {}) {
  const parts = []
  for await (const p of ipfs.cat(cid, opts)) parts.push(p)
  return Buffer.concat(parts)
}

const out = {}
out.version = (await ipfs.version()).version
const v0 = await ipfs.add(big)
const v1 = await ipfs.add(big, { cidVersion: 1 })
out.add_v0 = { cid: v0.cid.toString(), size: v0.size }
out.add_v1 = { cid: v1.cid.toString(), size: v1.size }
out.cat_v1_equal = Buffer.compare(await cat(v1.cid), Buffer.from(big)) === 0
out.cat_range = [...(await cat(v0.cid, { offset: 1000, length: 5 }))]
const dir = []
for await (const e of ipfs.addAll([
  { path: 'img/manifest.json', content: enc.encode('{"a":1}') },
  { path: 'img/blobs/layer', content: big }
])) dir.push({ path: e.path, cid: e.cid.toString() })
out.add_all = dir
const blockCid = await ipfs.block.put(enc.encode('raw block'))
out.block_put = blockCid.toString()
out.block_get = dec.decode(await ipfs.block.get(blockCid))
await ipfs.pin.add(blockCid)
out.pins_after_add = []
for await (const p of ipfs.pin.ls()) out.pins_after_add.push(p.cid.toString())
await ipfs.pin.rm(v0.cid)
await ipfs.pin.rm(blockCid)
out.gc = []
for await (const r of ipfs.repo.gc()) out.gc.push(r.cid.toString())
const stat = await ipfs.repo.stat()
out.stat = { numObjects: Number(stat.numObjects), repoSize: Number(stat.repoSize), storageMax: Number(stat.storageMax) }
try {
  await ipfs.block.get(blockCid)
  out.block_after_gc = 'present'
} catch (err) {
  out.block_after_gc = String(err.message)
}
process.stdout.write(JSON.stringify(out))
