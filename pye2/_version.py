"""Version of the pye2 distribution."""

__version__ = "0.1.0"
