"""The API catalogue: pages, JSON and contracts drawn from the gateway's own config."""
