"""Read models built only from events: one module per view, and their runner."""
