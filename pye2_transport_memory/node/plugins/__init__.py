"""Simulated business plugins (CUSTOM_EXEC_01, OBJECT_TRACKING_01, ...)."""
