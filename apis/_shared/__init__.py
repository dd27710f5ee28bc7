"""What every tier API needs: problem errors, database, pagination, ETags, idempotency."""
