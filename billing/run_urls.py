"""URL patterns included by billing/urls.py (namespace ``billing``): runs and invoices."""

from django.urls import path

from billing import run_views as views

urlpatterns: list = [
    path("runs/", views.run_list, name="run-list"),
    path("runs/<int:pk>/", views.run_detail, name="run-detail"),
    path("runs/<int:pk>/progress/", views.run_progress, name="run-progress"),
    path("runs/<int:pk>/post/", views.run_post, name="run-post"),
    path("runs/<int:pk>/preview/", views.run_preview, name="run-preview"),
    path("invoices/", views.invoice_list, name="invoice-list"),
    path("invoices/<int:pk>/", views.invoice_detail, name="invoice-detail"),
    path("invoices/<int:pk>/pdf/", views.invoice_download, name="invoice-pdf"),
]
