"""Application layer: orchestrates ports; holds no protocol logic of its own."""
