"""The chain side of the marketplace: contracts' client, on-chain escrow ledger, indexer.

``hcp.marketplace.chain`` never imports ray. Entry point: ``hcp.marketplace.chain.stack.open_chain``.
"""
