from django.urls import path

from fieldops import views

app_name = "fieldops"
urlpatterns = [path("", views.home, name="home")]
