"""Herald's contracts: device frames, Kafka envelopes, events, topics, keys and limits.

Nothing here does I/O. Every role imports these definitions instead of restating them, so a
constant or a field changes in one place.
"""
