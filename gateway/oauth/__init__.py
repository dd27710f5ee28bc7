"""Built-in OAuth2 authorization server: client_credentials, JWT access tokens (RFC 9068),
JWKS, RFC 8414 metadata, RFC 7662 introspection, RFC 7009 revocation."""
