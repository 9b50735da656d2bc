"""Where events live: the PostgreSQL connection, the events table and its guarantees."""
