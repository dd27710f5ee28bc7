"""Forwarding to upstreams: transports, pooling, balancing, circuit breaking, headers."""
