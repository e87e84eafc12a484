"""The site's URL map with the plant pages at /plant/, as the root map will mount them."""

from django.urls import include, path

from mcoms.urls import urlpatterns as site_patterns

urlpatterns = [*site_patterns, path("plant/", include("metering.plant.urls"))]
