"""HTTP and GraphQL: the only package that knows about requests."""
