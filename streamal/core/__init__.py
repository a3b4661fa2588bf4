"""The pure core: one learner per arrival, its parts, and how they are assembled.

Nothing here does I/O beyond snapshot files and an optional SQLite pending store, and
nothing imports Kafka, Prometheus, pydantic-settings or typer (``tests/test_layers.py``
checks it). ``docs/architecture.md`` draws the layers.
"""
