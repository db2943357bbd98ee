"""pye2_transport_memory package (see plugin.py for registration)."""
