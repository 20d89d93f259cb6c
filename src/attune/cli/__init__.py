"""The ``attune`` command line."""
