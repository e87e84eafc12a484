from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "mcoms.dashboard"
    label = "dashboard"
    verbose_name = "Dashboards"
