"""Reporting: one module per experiment's results page (``density``, ``adversarial``,
``attribution``), the summary across them, the Performance page, the one verdict rule
they all use (``verdicts``), the paper's own numbers (``paper``), the figures
(``plots``) and the book's assembly (``book``). Reporting reads results through
``paperlib.run``; it never trains or attacks.
"""
