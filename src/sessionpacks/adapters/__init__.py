"""Stores and clocks that implement :mod:`sessionpacks.ports`.

The domain never imports from here; adapters depend on the domain.
"""
