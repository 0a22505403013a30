"""Running and storing: profiles, the grid, results, checkpoints, provenance, plans.

Run builds on ``paperlib.core`` and never imports ``paperlib.report``.
"""
