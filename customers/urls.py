from django.urls import include, path

from customers import access_views, portal, views

app_name = "customers"
urlpatterns = [
    path("customers/", views.customer_list, name="list"),
    path("customers/new/", views.customer_create, name="create"),
    path("customers/<int:pk>/", views.customer_detail, name="detail"),
    path("customers/<int:pk>/edit/", views.customer_edit, name="edit"),
    path("customers/<int:pk>/status/", views.customer_status, name="status"),
    path("customers/<int:pk>/requests/new/", views.request_create, name="request_create"),
    path("customers/access-log/", access_views.access_log, name="access_log"),
    path("requests/", views.request_list, name="requests"),
    path("requests/<int:pk>/", views.request_detail, name="request"),
    path("requests/<int:pk>/assign/", views.request_assign, name="request_assign"),
    path("portal/", portal.home, name="portal"),
    path("portal/", include("customers.portal.urls")),
]
