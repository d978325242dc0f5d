"""The parts of ``benchmarks/steps_quality.py``: the settings it runs (solvers at budgets of UNet
evaluations) and its report (comparisons with each pipeline's default, the table, the curve).

Imported by the script (whose folder is on ``sys.path``), never installed with the package.
"""
