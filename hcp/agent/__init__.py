"""The provider agent: runs renters' containers on a node's GPUs for the marketplace.

Pure core (no Ray): ``ProviderAgent`` (``agent.py``) is a plain class with ``step()``,
``run()`` and ``reconcile()``; everything it touches comes through the ports in
``ports.py`` (marketplace, Docker Engine, images, run records, the GPU's RENTED lease).
See docs/agent.md.
"""
