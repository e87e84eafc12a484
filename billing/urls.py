"""Billing's pages: billing runs and invoices, and tariffs."""

from billing import run_urls, tariff_urls

app_name = "billing"
urlpatterns = run_urls.urlpatterns + tariff_urls.urlpatterns
