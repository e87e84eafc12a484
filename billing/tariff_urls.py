"""URL patterns included by billing/urls.py (namespace ``billing``): tariffs and charges."""

from django.urls import path

from billing import tariff_views as views

urlpatterns: list = [
    path("tariffs/", views.tariff_list, name="tariff-list"),
    path("tariffs/<int:pk>/", views.tariff_detail, name="tariff-detail"),
    path("tariffs/<int:pk>/propose/", views.tariff_propose, name="tariff-propose"),
    path(
        "tariffs/versions/<int:pk>/approve/",
        views.tariff_version_approve,
        name="tariff-version-approve",
    ),
    path(
        "tariffs/versions/<int:pk>/reject/",
        views.tariff_version_reject,
        name="tariff-version-reject",
    ),
    path("charges/customer/<int:customer_id>/", views.charge_list, name="charge-list"),
    path("charges/customer/<int:customer_id>/add/", views.charge_add, name="charge-add"),
    path(
        "charges/customer/<int:customer_id>/deposit-return/",
        views.charge_deposit_return,
        name="charge-deposit-return",
    ),
    path("charges/<int:pk>/cancel/", views.charge_cancel, name="charge-cancel"),
]
