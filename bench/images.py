"""Image store benchmarks (``python -m bench.images``).

Lines (one JSON object each, ``bench.common.emit``), every baseline measured in this run:
- ``import_mb_s_v0`` / ``import_mb_s_v1``: UnixFS import (CID only) of ``--mib`` MiB held in
  memory; baseline = ``hashlib.sha256`` over the same bytes (the floor: a CID costs at least one
  SHA-256 pass). ``import_store_mb_s_v0``: the same into the embedded store on disk.
- ``import_mb_s_vs_js_v0``: hcp's import of a generated stream vs the npm ipfs-unixfs-importer
  on the same stream (both generate the bytes, so both walls include that).
- ``range_1k_ms`` / ``range_1k_blocks``: 1 KiB at random offsets of a 1 GiB file in the store
  (blocks touched; baseline = ``os.pread`` of 1 KiB from the same bytes as a flat file).
- ``fetch_mb_s_3_peers``: one DAG fetched and verified from 3 peer nodes (subprocess
  gateways); baseline = the same from 1 peer.
- ``push_s`` / ``pull_s``: an image into the store from the Engine / back into ``docker load``;
  baselines = ``docker save`` alone / ``docker save | docker load`` of the same image.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import emit, note
from hcp.images.exporter import cat
from hcp.images.importer import import_bytes, import_stream
from hcp.images.params import KUBO_CIDV1, KUBO_DEFAULT
from hcp.images.patterns import pattern_bytes, pattern_stream

ROOT = Path(__file__).resolve().parents[1]
B = "images"


def _store(path: Path, cap: int = 8 << 30):  # type: ignore[no-untyped-def]
    from hcp.images.store.embedded import EmbeddedStore
    from hcp.store.db import connect, migrate

    engine = connect(f"sqlite:///{path / 'store.db'}")
    migrate(engine)
    return EmbeddedStore(path / "store", engine, cap)


def _best(fn, reps: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_import(mib: int, tmp: Path) -> None:
    data = pattern_bytes("bench", mib << 20)
    mb = len(data) / 1e6
    sha = _best(lambda: hashlib.sha256(data).digest())
    for name, params in (("v0", KUBO_DEFAULT), ("v1", KUBO_CIDV1)):
        t = _best(lambda p=params: import_bytes(data, None, p))
        emit(B, f"import_mb_s_{name}", mb / t, "MB/s", mb / sha)
    store = _store(tmp / "import")
    t0 = time.perf_counter()
    store.add([data], KUBO_DEFAULT)
    emit(B, "import_store_mb_s_v0", mb / (time.perf_counter() - t0), "MB/s", mb / sha)


def bench_vs_js(mib: int) -> None:
    node = shutil.which("node")
    script = ROOT / "tests" / "integration" / "images" / "reference_importer.mjs"
    if not node or not (ROOT / "node_modules" / "ipfs-unixfs-importer").is_dir():
        note("npm ipfs-unixfs-importer not installed (npm ci): no JS comparison")
        return
    size = mib << 20
    vec = {"vectors": [{"name": "x", "kind": "file", "seed": "js", "size": size,
                        "params": KUBO_DEFAULT.to_dict()}]}
    t0 = time.perf_counter()
    out = subprocess.run([node, str(script)], input=json.dumps(vec), capture_output=True, text=True,
                         check=True, cwd=ROOT)
    js = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = import_stream(pattern_stream("js", size), None, KUBO_DEFAULT)
    py = time.perf_counter() - t0
    assert json.loads(out.stdout)["x"] == str(ours.cid), "JS and hcp disagree"
    emit(B, "import_mb_s_vs_js_v0", size / 1e6 / py, "MB/s", size / 1e6 / js)


def bench_range(tmp: Path, gib: float) -> None:
    size = int(gib * (1 << 30))
    store = _store(tmp / "range")
    flat = tmp / "flat.bin"
    with flat.open("wb") as fh:
        for piece in pattern_stream("range", size):
            fh.write(piece)
    with flat.open("rb") as fh:
        root = store.add(fh, KUBO_DEFAULT).cid
    rng = random.Random(7)
    offsets = [rng.randrange(0, size - 1024) for _ in range(200)]
    touched: list[int] = []
    t0 = time.perf_counter()
    for off in offsets:
        seen: list[bytes] = []
        got = b"".join(cat(root, store._read, off, 1024, visit=lambda _c, b, s=seen: s.append(b)))
        assert len(got) == 1024
        touched.append(len(seen))
    ours = (time.perf_counter() - t0) / len(offsets)
    fd = os.open(flat, os.O_RDONLY)
    t0 = time.perf_counter()
    for off in offsets:
        os.pread(fd, 1024, off)
    flat_t = (time.perf_counter() - t0) / len(offsets)
    os.close(fd)
    emit(B, "range_1k_ms", ours * 1e3, "ms", flat_t * 1e3, file_bytes=size)
    emit(B, "range_1k_blocks", sum(touched) / len(touched), "blocks", None,
         file_blocks=(size + 262143) // 262144)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _peer(home: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "HCP_HOME": str(home), "HCP_JWT_SECRET": "b" * 40}
    return subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory",
                             "serve_apps.images.app:create_app", "--host", "127.0.0.1",
                             "--port", str(port), "--log-level", "warning"], env=env, cwd=ROOT)


def bench_fetch(tmp: Path, mib: int) -> None:
    import httpx

    from hcp.config import Settings
    from hcp.images.fetcher import GatewayFetcher
    from hcp.images.service import fetch_into
    from hcp.images.store.embedded import EmbeddedStore

    data = pattern_bytes("fetch", mib << 20)
    procs, urls = [], []
    root = None
    try:
        for i in range(3):
            home = tmp / f"peer{i}"
            s = EmbeddedStore.from_settings(Settings(home=home))
            root = s.add([data], KUBO_CIDV1).cid
            s.engine.dispose()
            port = free_port()
            procs.append(_peer(home, port))
            urls.append(f"http://127.0.0.1:{port}")
        for url in urls:
            for _ in range(200):
                try:
                    httpx.get(f"{url}/ipfs/{root}?format=raw", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
        results = {}
        for n in (1, 3):
            store = _store(tmp / f"fetch{n}")
            fetcher = GatewayFetcher(urls[:n], parallelism=8)
            t0 = time.perf_counter()
            fetch_into(store, root, fetcher)
            results[n] = len(data) / 1e6 / (time.perf_counter() - t0)
            fetcher.close()
        emit(B, "fetch_mb_s_3_peers", results[3], "MB/s", results[1], bytes=len(data))
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)


def bench_docker(tmp: Path, mib: int) -> None:
    import io
    import tarfile

    import docker

    from hcp.images.catalog import ImageCatalog
    from hcp.images.engine import load_into_engine, push_from_engine
    from hcp.images.service import ImageService

    client = docker.from_env(timeout=600)
    ctx = io.BytesIO()
    payload = pattern_bytes("docker", mib << 20)
    with tarfile.open(fileobj=ctx, mode="w") as tar:
        for name, body in (("Dockerfile", b"FROM scratch\nCOPY blob /blob\n"), ("blob", payload)):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    ctx.seek(0)
    tag = f"hcp-bench-image:{os.getpid()}"
    client.images.build(fileobj=ctx, custom_context=True, tag=tag, rm=True)
    try:
        store = _store(tmp / "docker")
        svc = ImageService(store, ImageCatalog(store.engine))
        save = _best(lambda: subprocess.run(f"docker save {tag} > /dev/null", shell=True, check=True), 2)
        t0 = time.perf_counter()
        stored, _ = push_from_engine(svc, tag, "bench", client)
        push = time.perf_counter() - t0
        emit(B, "push_s", push, "s", save, image_bytes=stored.size)
        roundtrip = _best(lambda: subprocess.run(f"docker save {tag} | docker load -q > /dev/null",
                                                 shell=True, check=True), 2)
        client.images.remove(tag, force=True)
        t0 = time.perf_counter()
        load_into_engine(svc, str(stored.cid), client, [tag])
        pull = time.perf_counter() - t0
        emit(B, "pull_s", pull, "s", roundtrip, image_bytes=stored.size)
    finally:
        try:
            client.images.remove(tag, force=True)
        except docker.errors.ImageNotFound:
            pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=256, help="MiB imported for throughput")
    ap.add_argument("--range-gib", type=float, default=1.0, help="file size of the range read")
    ap.add_argument("--fetch-mib", type=int, default=64)
    ap.add_argument("--image-mib", type=int, default=64)
    ap.add_argument("--skip", nargs="*", default=[], choices=["import", "js", "range", "fetch", "docker"])
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hcp-bench-images-"))
    try:
        if "import" not in args.skip:
            bench_import(args.mib, tmp)
        if "js" not in args.skip:
            bench_vs_js(args.mib)
        if "range" not in args.skip:
            bench_range(tmp, args.range_gib)
        if "fetch" not in args.skip:
            bench_fetch(tmp, args.fetch_mib)
        if "docker" not in args.skip:
            bench_docker(tmp, args.image_mib)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
