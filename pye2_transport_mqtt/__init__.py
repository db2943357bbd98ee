"""pye2_transport_mqtt package (see plugin.py for registration)."""
