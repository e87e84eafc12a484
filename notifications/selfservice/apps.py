from django.apps import AppConfig


class SelfserviceConfig(AppConfig):
    name = "notifications.selfservice"
    label = "selfservice"
    verbose_name = "USSD and SMS self-service"
