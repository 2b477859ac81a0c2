"""Container images by IPFS CID: the UnixFS importer/exporter, CAR files, Merkle range proofs,
the block store (embedded and Kubo), the multi-peer fetcher, Docker images and caching policy.

Pure core: nothing here imports Ray.
"""
