"""Herald's benchmark suite: load generators and one command per scenario.

Every scenario runs the real role processes (``python -m herald ...``) on the local Redis and
Kafka of ``deploy/local``, drives them from generator processes of its own, and writes a JSON
result under ``benchmarks/results/``; ``python -m benchmarks.report`` turns the latest results
into ``benchmarks/RESULTS.md``. See ``benchmarks/README.md``.
"""
