"""The relationship domain: pure aggregates, events, rules and the command service."""
