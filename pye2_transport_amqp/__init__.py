"""pye2_transport_amqp package (see plugin.py for registration)."""
