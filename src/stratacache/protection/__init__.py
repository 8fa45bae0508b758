"""Protection against load: single-flight today; leases, XFetch, stale-while-revalidate and fail-safe next."""
