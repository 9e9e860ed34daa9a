"""Building blocks shared by the model folders.

A model folder must import nothing from hfdl (it is what ``trust_remote_code`` copies to the Hub), so the blocks
defined here are *copied* into each modeling/configuration file under a ``# Copied from hfdl.layers.<module>.<name>``
marker. ``python -m hfdl.tools.check_copies`` keeps every copy identical to its source (``--fix`` rewrites them).
"""
