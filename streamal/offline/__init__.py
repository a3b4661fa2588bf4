"""The offline side: recorded and synthetic streams, a simulated oracle, replay, reports."""
