"""Bridges from hfdl's models to other libraries' model APIs.

Each bridge is a submodule that imports its library only when it is imported itself (``import hfdl.integrations``
imports nothing heavy), so hfdl keeps working where that library is not installed:

- :mod:`hfdl.integrations.timm`: every CNN preset as a timm model, ``timm.create_model("hfdl_resnet18", ...)``.
"""
