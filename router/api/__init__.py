"""The HTTP API role (``herald api``): apps, devices, accounts, tags, attributes, pushes,
tasks (status, stop, recall), push records, statistics and callback configs for app backends,
on FastAPI and uvicorn.

Every call authenticates as one app (HTTP Basic ``app_id:server_secret``) and acts on that app
alone. Bodies are the msgspec structs of ``proto.api``, decoded here and described by the
OpenAPI document at ``/openapi.json``. The API reaches Redis only through ``herald.store.Store``
and Kafka only through ``herald.bus.Bus``; a push is published to ``push.requests`` and a recall to
``push.recalls`` as a backend would, and the router takes it from there.
"""
