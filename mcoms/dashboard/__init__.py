"""Management dashboards: the top layer, reading every app through its selectors."""
