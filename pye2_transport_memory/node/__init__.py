"""The simulated Execution Engine node: pipelines, data sources and plugins."""
