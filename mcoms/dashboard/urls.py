from django.urls import path

from mcoms.dashboard import views

app_name = "dashboard"
urlpatterns = [
    path("", views.home, name="home"),
    path("region/<int:pk>/", views.region, name="region"),
    path("cluster/<int:pk>/", views.cluster, name="cluster"),
    path("site/<int:pk>/", views.site, name="site"),
    path("customer/<int:pk>/", views.customer, name="customer"),
]
