"""orderlake: client CSV drops to an upserted, checked Delta table, exactly once."""
