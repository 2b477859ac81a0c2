"""Renters' instances over the marketplace (``/api/v1/gpus``, ``/api/v1/instances``, live logs
and metrics) and the provider agents' own routes (``/api/v1/agent``). See docs/agent.md."""
