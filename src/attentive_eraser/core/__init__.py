"""The method itself, torch only: the attention processor (AAS, SS), its layers, SARG's batch, masks, inversion.

Every equation of the paper maps to one function here (``docs/method.md`` has the table).
"""
