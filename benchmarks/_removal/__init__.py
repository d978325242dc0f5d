"""The parts of the removal benchmark (``benchmarks/removal_quality.py``), which
``benchmarks/steps_quality.py`` runs too: loading, the methods (rows), running them, scoring, diagnostics
and the report.

Imported by the scripts (whose folder is on ``sys.path``), never installed with the package.
"""
