"""Stand-ins for third-party plugin packages, loaded through injected entry points.

Nothing here is collected by pytest (no ``test_`` names); each module is what an entry point of
a fake package would load.
"""
