"""Writers: the ranking, the run summary and the overlay pictures, each written atomically."""
