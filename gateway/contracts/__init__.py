"""Contracts: the OpenAPI documents of the tier APIs, linted and tested."""
