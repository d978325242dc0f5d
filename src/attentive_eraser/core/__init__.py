"""The method itself, torch only.

The attention processor (AAS, SS), its layers, SARG's batch, masks and inversion.

Every equation of the paper maps to one function here (``docs/method.md`` has the table).
"""
