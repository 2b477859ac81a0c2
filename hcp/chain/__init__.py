"""The chain side of the marketplace: contracts' client, on-chain escrow ledger, indexer.

``hcp.chain`` never imports ray. Entry point: ``hcp.chain.stack.open_chain``.
"""
