"""Routes of this part of metering (filled in as the feature lands)."""

urlpatterns: list = []
