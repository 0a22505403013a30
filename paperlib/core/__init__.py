"""The science: data, models, penalties, training, attacks, attribution, metrics.

Nothing here reads profiles from disk, runs grids or writes reports: core imports
neither ``paperlib.run`` nor ``paperlib.report``.
"""
