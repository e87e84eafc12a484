from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "mcoms.ops"
    label = "ops"
    verbose_name = "Operations"
