"""Prepaid: staff pages (mounted at /prepaid/)."""

from django.urls import path

from billing.prepaid import views

app_name = "prepaid"
urlpatterns = [
    path("", views.customer_list, name="list"),
    path("customers/<int:pk>/", views.customer_detail, name="customer"),
    path("customers/<int:pk>/quote/", views.quote, name="quote"),
]
