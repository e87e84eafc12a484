from django.urls import path

from mcoms.ops import views

app_name = "ops"
urlpatterns: list = [
    path("", views.home, name="home"),
    path("thresholds/", views.thresholds, name="thresholds"),
]
