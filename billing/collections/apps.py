from django.apps import AppConfig


class CollectionsConfig(AppConfig):
    name = "billing.collections"
    label = "collections"
    verbose_name = "Collections and accounting"
