"""Oracle validators, the pure core: signed heartbeats and missed-heartbeat counting,
possession challenges answered with Merkle proofs, k-of-n quorum, the escalation from warning
to penalty and slash, hourly reports, evidence bundles, and their store.

Modules: ``heartbeat``, ``liveness``, ``challenge`` (messages, the agent's answer), ``audit``
(the validator's check), ``findings``, ``quorum``, ``escalation``, ``report``, ``evidence``,
``models``/``repository``, ``apply`` (effects on the marketplace's reputation), ``settings``,
``signing``, ``wire``. Nothing here imports Ray; docs/oracle.md describes the protocol.
"""
