"""Built-in adapters that are not transports (serializers, signers, clock)."""
