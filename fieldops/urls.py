from django.urls import include, path

from fieldops import views

app_name = "fieldops"
urlpatterns = [
    path("", views.home, name="home"),
    path("", include("fieldops.task_urls")),
    path("", include("fieldops.app_urls")),
]
