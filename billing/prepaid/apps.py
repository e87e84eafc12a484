from django.apps import AppConfig


class PrepaidConfig(AppConfig):
    name = "billing.prepaid"
    label = "prepaid"
    verbose_name = "Prepaid"
