"""The parts of ``benchmarks/speed.py``: models, measuring, inputs, benchmarks, the plan of a run, the report.

Imported by the script (whose folder is on ``sys.path``), never installed with the package.
"""
