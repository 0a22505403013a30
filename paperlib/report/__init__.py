"""Reporting: one module per experiment's results page (``density``, ``adversarial``,
``attribution``), the summary across them, the Performance page, and the one verdict
rule they all use (``verdicts``). Reporting reads results; it never trains or attacks.
"""
