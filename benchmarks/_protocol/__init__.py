"""The phases of ``benchmarks/paper_protocol.py`` (prepare, run, score, and the offline tiny run), one
module each, and what they share.

Imported by the script (whose folder is on ``sys.path``), never installed with the package.
"""
