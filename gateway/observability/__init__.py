"""Access log, metrics and trace context."""
