from django.urls import path

from mcoms.privacy import views

app_name = "privacy"
urlpatterns = [
    path("customers/<int:pk>/", views.customer, name="customer"),
    path("customers/<int:pk>/export/", views.export, name="export"),
    path("customers/<int:pk>/anonymise/", views.erase, name="anonymise"),
]
