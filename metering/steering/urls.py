from django.urls import path

from metering.steering import views

app_name = "steering"
urlpatterns = [
    path("", views.command_list, name="commands"),
    path("commands/<int:pk>/approve/", views.command_approve, name="approve"),
    path("commands/<int:pk>/reject/", views.command_reject, name="reject"),
    path("meters/<int:pk>/", views.meter_page, name="meter"),
    path("meters/<int:pk>/critical/", views.meter_critical, name="critical"),
    path("meters/<int:pk>/block/", views.meter_block, name="block"),
    path("meters/<int:pk>/force/", views.meter_force, name="force"),
    path("meters/<int:pk>/read/", views.meter_read, name="read"),
    path("field-jobs/", views.field_job_list, name="field_jobs"),
    path("field-jobs/<int:pk>/", views.field_job_page, name="field_job"),
    path("field-jobs/<int:pk>/cancel/", views.field_job_cancel, name="field_job_cancel"),
    path("sites/<int:site_pk>/", views.site_settings, name="site_settings"),
]
